using System.Net;
using System.Net.Sockets;

namespace VixAspire.DemoPage.Tests;

/// <summary>
/// A TCP hop between the browser and the gateway that can go down like a network does: <see cref="GoDown"/>
/// resets every open connection (so a response being streamed fails mid-body) and refuses new ones until
/// <see cref="ComeBack"/>. Chromium's offline emulation cannot do this: it fails new requests but leaves an
/// in-flight streamed response running.
/// </summary>
public sealed class NetworkCut : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly HashSet<Socket> _open = [];
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;
    private readonly TaskCompletionSource _firstRefusal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _down;

    public NetworkCut(Uri upstream)
    {
        _upstream = new IPEndPoint(IPAddress.Loopback, upstream.Port);
        _listener.Start();
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync(_stop.Token);
    }

    public Uri Address { get; }

    /// <summary>Connections reset by <see cref="GoDown"/> (both ends count once).</summary>
    public int ConnectionsCut { get; private set; }

    /// <summary>Completes when a connection is refused because the network is down.</summary>
    public Task FirstRefusal => _firstRefusal.Task;

    public void GoDown()
    {
        lock (_gate)
        {
            _down = true;
            foreach (var socket in _open)
            {
                Reset(socket);
            }

            ConnectionsCut += _open.Count / 2;
            _open.Clear();
        }
    }

    public void ComeBack()
    {
        lock (_gate)
        {
            _down = false;
        }
    }

    private async Task AcceptAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var downstream = await _listener.AcceptSocketAsync(cancellationToken);
                lock (_gate)
                {
                    if (_down)
                    {
                        Reset(downstream);
                        _firstRefusal.TrySetResult();
                        continue;
                    }

                    _relays.Add(RelayAsync(downstream, cancellationToken));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RelayAsync(Socket downstream, CancellationToken cancellationToken)
    {
        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await upstream.ConnectAsync(_upstream, cancellationToken);
            lock (_gate)
            {
                if (_down)
                {
                    Reset(downstream);
                    return;
                }

                _open.Add(downstream);
                _open.Add(upstream);
            }

            await Task.WhenAny(CopyAsync(downstream, upstream, cancellationToken), CopyAsync(upstream, downstream, cancellationToken));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _open.Remove(downstream);
                _open.Remove(upstream);
            }

            downstream.Dispose();
        }
    }

    private static async Task CopyAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, cancellationToken)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    /// <summary>Closes with an RST, as a dropped network path eventually looks to both ends.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        GoDown();
        Task[] relays;
        lock (_gate)
        {
            relays = [.. _relays];
        }

        await Task.WhenAll(relays);
        _stop.Dispose();
    }
}
