using System.Net;
using System.Net.Sockets;

namespace VixAspire.IntegrationTests;

/// <summary>
/// A TCP hop between the gateway and an upstream that passes bytes on at once but tells the gateway about
/// the upstream's close only after <c>closeDelay</c>, as a network (or a proxy) between them can. It widens
/// the keep-alive race, in which the gateway reuses a pooled connection the upstream has just closed, from
/// microseconds on loopback to a window a test can hit every time.
/// </summary>
public sealed class LateCloseRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _upstream;
    private readonly TimeSpan _closeDelay;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;
    private int _openUpstream;
    private TaskCompletionSource _allClosed = Completed();

    public LateCloseRelay(Uri upstream, TimeSpan closeDelay)
    {
        _upstream = new IPEndPoint(IPAddress.Loopback, upstream.Port);
        _closeDelay = closeDelay;
        _listener.Start();
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync(_stop.Token);
    }

    public Uri Address { get; }

    /// <summary>Connections the gateway has opened through the relay.</summary>
    public int Connections { get; private set; }

    /// <summary>Completes when no connection to the upstream is open, whichever side closed it.</summary>
    public Task AllUpstreamConnectionsClosed
    {
        get
        {
            lock (_gate)
            {
                return _allClosed.Task;
            }
        }
    }

    private async Task AcceptAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var downstream = await _listener.AcceptTcpClientAsync(cancellationToken);
                lock (_gate)
                {
                    Connections++;
                    if (_openUpstream++ == 0)
                    {
                        _allClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    _relays.Add(RelayAsync(downstream, cancellationToken));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RelayAsync(TcpClient downstream, CancellationToken cancellationToken)
    {
        using var _ = downstream;
        using var upstream = new TcpClient();
        var upstreamOpen = true;
        try
        {
            await upstream.ConnectAsync(_upstream, cancellationToken);
            var toUpstream = CopyAsync(downstream.GetStream(), upstream.GetStream(), cancellationToken);
            var toDownstream = CopyAsync(upstream.GetStream(), downstream.GetStream(), cancellationToken);
            var first = await Task.WhenAny(toUpstream, toDownstream);
            upstream.Close();
            upstreamOpen = false;
            UpstreamClosed();
            if (first == toDownstream)
            {
                // The upstream closed: the gateway hears of it late, and anything it sends meanwhile is lost.
                await Task.Delay(_closeDelay, cancellationToken);
            }

            downstream.Close();
            await Task.WhenAll(toUpstream, toDownstream);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException)
        {
        }
        finally
        {
            if (upstreamOpen)
            {
                UpstreamClosed();
            }
        }
    }

    private void UpstreamClosed()
    {
        lock (_gate)
        {
            if (--_openUpstream == 0)
            {
                _allClosed.TrySetResult();
            }
        }
    }

    private static async Task CopyAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        try
        {
            await from.CopyToAsync(to, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] relays;
        lock (_gate)
        {
            relays = [.. _relays];
        }

        await Task.WhenAll(relays);
        _stop.Dispose();
    }
}
