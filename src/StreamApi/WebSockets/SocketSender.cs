using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// The socket's one writer: messages queue in a bounded channel that one loop sends in order. A full queue makes
/// requests wait, so a slow client slows each request's reads from Redis rather than piling messages up in memory.
/// </summary>
internal sealed class SocketSender(WebSocket socket)
{
    private const int QueuedMessages = 256;
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly Channel<Message> _queue = Channel.CreateBounded<Message>(
        new BoundedChannelOptions(QueuedMessages) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _closing;

    /// <summary>Queues one message; false once the socket is closing, broken or <paramref name="cancellationToken"/> ends.</summary>
    public async ValueTask<bool> SendAsync(ReadOnlyMemory<byte> prefix, ReadOnlyMemory<byte> envelope, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(new(prefix, envelope), cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Ends a request that cannot run or go on: <c>inference.error</c> then <c>inference.end</c> (reason <c>error</c>).</summary>
    public async ValueTask<bool> SendFailureAsync(ReadOnlyMemory<byte> prefix, string code, string message, bool retryable, CancellationToken cancellationToken) =>
        await SendAsync(prefix, Envelopes.Error(code, message, retryable), cancellationToken)
        && await SendAsync(prefix, Envelopes.End(EndReasons.Error, 0), cancellationToken);

    /// <summary>Sends what is queued until <see cref="Complete"/>, a close, or <paramref name="cancellationToken"/> (the socket's lifetime).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        try
        {
            await foreach (var message in _queue.Reader.ReadAllAsync(cancellationToken))
            {
                buffer.ResetWrittenCount();
                if (!_closing && MessagePrefixes.TryWriteMessage(buffer, message.Prefix.Span, message.Envelope.Span))
                {
                    await socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The connection is gone; the receive loop fails too and ends the socket.
        }
        finally
        {
            _queue.Writer.TryComplete();
            _stopped.TrySetResult();
        }
    }

    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Drops what is still queued, refuses later messages, and sends the close frame once no send is in flight.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string description, bool awaitReply, CancellationToken cancellationToken)
    {
        _closing = true;
        _queue.Writer.TryComplete();
        await _stopped.Task.WaitAsync(cancellationToken);
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        if (awaitReply)
        {
            // Reads (and drops) the rest of what the client sends until its close frame, so the connection is not
            // reset under the close frame with unread data; bounded, for a client that never answers.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(CloseHandshakeTimeout);
            await socket.CloseAsync(status, description, timeout.Token);
        }
        else
        {
            await socket.CloseOutputAsync(status, description, cancellationToken);
        }
    }

    private readonly record struct Message(ReadOnlyMemory<byte> Prefix, ReadOnlyMemory<byte> Envelope);
}
