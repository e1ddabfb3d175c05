using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>Runs accepted inference sockets; holds what each <see cref="InferenceSocket"/> shares.</summary>
internal sealed class InferenceSockets(
    InferenceRequestReader reader,
    StreamStarter starter,
    StreamSessions sessions,
    StreamControl control,
    StreamApiTelemetry telemetry,
    IOptionsMonitor<StreamingOptions> options,
    ILogger<InferenceSockets> logger)
{
    internal InferenceRequestReader Reader => reader;

    internal StreamStarter Starter => starter;

    internal StreamSessions Sessions => sessions;

    internal StreamControl Control => control;

    internal StreamApiTelemetry Telemetry => telemetry;

    internal StreamingOptions Limits => options.CurrentValue;

    internal ILogger Logger => logger;

    /// <summary>Serves one socket until it closes or <paramref name="cancellationToken"/> (the connection) ends.</summary>
    public async Task RunAsync(WebSocket socket, string client, CancellationToken cancellationToken)
    {
        using var connection = new InferenceSocket(this, socket, client, cancellationToken);
        await connection.RunAsync();
    }
}

/// <summary>
/// One client's socket: a receive loop that starts and cancels requests, and one task per running request that
/// follows its stream through a <see cref="StreamSession"/>, exactly as an SSE response does. Sends are serialised
/// by one lock, taken once per batch, so a request's messages stay in order and a slow client slows each
/// request's reads from Redis rather than piling messages up in memory.
/// </summary>
internal sealed class InferenceSocket : IDisposable
{
    private const int ReceiveChunkBytes = 4096;
    private const int KeptReceiveBufferBytes = 64 * 1024;
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly InferenceSockets _owner;
    private readonly WebSocket _socket;
    private readonly string _client;
    private readonly CancellationTokenSource _lifetime;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _sendBuffer = new(1024);
    private readonly List<Task> _requestTasks = [];
    private readonly List<SocketRequest> _requests = [];
    private bool _closed;

    public InferenceSocket(InferenceSockets owner, WebSocket socket, string client, CancellationToken connectionAborted)
    {
        _owner = owner;
        _socket = socket;
        _client = client;
        _lifetime = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
    }

    private ILogger Logger => _owner.Logger;

    public async Task RunAsync()
    {
        try
        {
            await ReceiveAsync(_lifetime.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            Log.WebSocketLost(Logger, ex);
        }
        finally
        {
            // Ends every request's tail; disposing its session detaches it, which starts the disconnect grace.
            await _lifetime.CancelAsync();
            await Task.WhenAll(_requestTasks);
        }
    }

    private async Task ReceiveAsync(CancellationToken cancellationToken)
    {
        var limit = _owner.Limits.MaxRequestBodyBytes;
        var message = new ArrayBufferWriter<byte>(ReceiveChunkBytes);
        while (true)
        {
            ValueWebSocketReceiveResult result;
            do
            {
                // Never read more than one byte past the limit, however large the client's message.
                var room = Math.Min(ReceiveChunkBytes, limit + 1 - message.WrittenCount);
                result = await _socket.ReceiveAsync(message.GetMemory(room)[..room], cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Log.WebSocketClosed(Logger, (int?)_socket.CloseStatus);
                    await CloseAsync(WebSocketCloseStatus.NormalClosure, "Closed by the client.", awaitReply: false);
                    return;
                }

                message.Advance(result.Count);
                if (message.WrittenCount > limit)
                {
                    Log.WebSocketMessageTooBig(Logger, limit);
                    await CloseAsync(WebSocketCloseStatus.MessageTooBig,
                        $"A message may be at most {limit} bytes (Streaming:MaxRequestBodyBytes).", awaitReply: true);
                    return;
                }
            }
            while (!result.EndOfMessage);

            await HandleAsync(result.MessageType, message.WrittenMemory);
            if (message.Capacity > KeptReceiveBufferBytes)
            {
                message = new ArrayBufferWriter<byte>(ReceiveChunkBytes);
            }
            else
            {
                message.ResetWrittenCount();
            }
        }
    }

    private async Task HandleAsync(WebSocketMessageType type, ReadOnlyMemory<byte> data)
    {
        var receivedAt = Stopwatch.GetTimestamp();
        if (type != WebSocketMessageType.Text)
        {
            await RejectMessageAsync(null, "Messages must be text frames, each holding one JSON object.");
            return;
        }

        ClientMessage? message;
        try
        {
            message = JsonSerializer.Deserialize(data.Span, SocketJsonContext.Default.ClientMessage);
        }
        catch (JsonException ex)
        {
            await RejectMessageAsync(null, $"The message is not valid JSON for this endpoint: {ex.Message}");
            return;
        }

        switch (message?.Type)
        {
            case ClientMessage.RequestType:
                await StartRequestAsync(message, receivedAt);
                break;
            case ClientMessage.CancelType:
                await CancelAsync(message);
                break;
            case null:
                await RejectMessageAsync(message?.RequestId,
                    $"A message must be a JSON object with a 'type': '{ClientMessage.RequestType}' or '{ClientMessage.CancelType}'.");
                break;
            default:
                await RejectMessageAsync(message.RequestId,
                    $"Unknown message type '{message.Type}'; expected '{ClientMessage.RequestType}' or '{ClientMessage.CancelType}'.");
                break;
        }
    }

    private async Task StartRequestAsync(ClientMessage message, long receivedAt)
    {
        InferenceRequestBody? body = null;
        string? invalid = null;
        if (message.Payload is not { ValueKind: JsonValueKind.Object } payload)
        {
            invalid = "'payload' must be a JSON object: the body of POST /infer/stream.";
        }
        else
        {
            try
            {
                body = payload.Deserialize(SocketJsonContext.Default.InferenceRequestBody);
            }
            catch (JsonException ex)
            {
                invalid = $"The payload is not valid for this endpoint: {ex.Message}";
            }
        }

        if (invalid is not null)
        {
            await RefuseAsync(message.RequestId, "invalid_request", invalid, retryable: false);
            return;
        }

        var read = _owner.Reader.Validate(body!);
        if (read.Fault is { } fault)
        {
            await RefuseAsync(message.RequestId, fault);
            return;
        }

        var request = new SocketRequest(message.RequestId);
        lock (_requests)
        {
            _requests.Add(request);
        }

        _requestTasks.RemoveAll(t => t.IsCompleted);
        _requestTasks.Add(RunRequestAsync(request, read.Request!, receivedAt));
    }

    private async Task RunRequestAsync(SocketRequest request, InferenceRequest inference, long receivedAt)
    {
        var cancellationToken = _lifetime.Token;
        // One span per request, so each queue entry carries its own traceparent rather than the socket's.
        using var activity = StreamApiTelemetry.Source.StartActivity("WebSocket inference.request");
        try
        {
            var started = await _owner.Starter.StartAsync(inference, _client, cancellationToken);
            if (started.Refusal is { } refused)
            {
                await RefuseAsync(request.RequestId, refused);
                return;
            }

            await using var session = await _owner.Sessions.OpenAsync(started.Id, _client);
            bool cancelRequested;
            lock (_requests)
            {
                request.StreamId = started.Id;
                cancelRequested = request.CancelRequested;
            }

            if (cancelRequested)
            {
                await CancelStreamAsync(request, started.Id);
            }

            await FollowAsync(session, SocketFrames.Prefix(started.Id, request.RequestId), receivedAt, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.WebSocketStartFailed(Logger, ex);
            await RefuseAsync(request.RequestId, "stream_unavailable", "The request could not be queued; retry shortly.", retryable: true);
        }
        finally
        {
            lock (_requests)
            {
                _requests.Remove(request);
            }
        }
    }

    private async Task FollowAsync(StreamSession session, byte[] prefix, long receivedAt, CancellationToken cancellationToken)
    {
        var sawToken = false;
        try
        {
            await foreach (var batch in session.TailAsync(afterId: null, new TailProgress(), cancellationToken))
            {
                var envelopes = new ReadOnlyMemory<byte>[batch.Length];
                var sawEnd = false;
                for (var i = 0; i < batch.Length; i++)
                {
                    envelopes[i] = batch[i][StreamFields.Data];
                    var name = batch[i][StreamFields.Event];
                    if (!sawToken && name == EventNames.Token)
                    {
                        sawToken = true;
                        _owner.Telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(receivedAt));
                    }

                    sawEnd |= name == EventNames.End;
                }

                if (sawEnd)
                {
                    await session.MarkEndedAsync();
                    StreamApiTelemetry.EndSent(TokenStreamTailer.EndReason(batch[^1]));
                }

                // An empty batch is the tailer's heartbeat: the socket's own pings keep it open.
                if (batch.Length > 0 && !await SendAsync(prefix, envelopes))
                {
                    return;
                }
            }

            if (!session.Ended)
            {
                // The stream expired or was removed under us: the contract still promises error then end.
                await SendAsync(prefix, Envelopes.Error("stream_lost", "The token stream is no longer available.", retryable: true),
                    Envelopes.End(EndReasons.Error, 0));
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            Log.TailFailed(Logger, ex, session.Id);
            await SendAsync(prefix,
                Envelopes.Error("stream_unavailable", $"The token stream could not be read; follow it with GET /infer/stream/{session.Id}.", retryable: true),
                Envelopes.End(EndReasons.Error, 0));
        }
    }

    private async Task CancelAsync(ClientMessage message)
    {
        var cancels = new List<(SocketRequest Request, string StreamId)>();
        lock (_requests)
        {
            foreach (var request in _requests)
            {
                var matches = message.StreamId is { } streamId ? request.StreamId == streamId
                    : message.RequestId is not { } requestId || request.RequestId == requestId;
                if (!matches)
                {
                    continue;
                }

                // Not started yet: its task cancels it as soon as it has a stream.
                request.CancelRequested = true;
                if (request.StreamId is { } id)
                {
                    cancels.Add((request, id));
                }
            }
        }

        await Task.WhenAll(cancels.Select(c => CancelStreamAsync(c.Request, c.StreamId)));
    }

    /// <summary>Cancels as DELETE does: the worker stops and writes the end (reason <c>cancelled</c>), which the request's tail sends.</summary>
    private async Task CancelStreamAsync(SocketRequest request, string streamId)
    {
        try
        {
            if (await _owner.Control.CancelAsync(streamId, _lifetime.Token) == StreamControl.CancelOutcome.Cancelled)
            {
                _owner.Telemetry.Cancelled("websocket");
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.WebSocketCancelFailed(Logger, ex, streamId);
            await SendAsync(SocketFrames.Prefix(streamId, request.RequestId),
                Envelopes.Error("cancel_failed", $"The cancel could not be delivered; send it again or DELETE /infer/stream/{streamId}.", retryable: true));
        }
    }

    private Task<bool> RefuseAsync(string? requestId, RequestFault fault) => RefuseAsync(requestId, fault.Code, fault.Detail, fault.Retryable);

    /// <summary>A request refused before it runs: error then end, with no stream id.</summary>
    private Task<bool> RefuseAsync(string? requestId, string code, string message, bool retryable) =>
        SendAsync(SocketFrames.Prefix(null, requestId), Envelopes.Error(code, message, retryable), Envelopes.End(EndReasons.Error, 0));

    private Task<bool> RejectMessageAsync(string? requestId, string message)
    {
        Log.WebSocketMessageRejected(Logger, message);
        return SendAsync(requestId is null ? SocketFrames.Untagged : SocketFrames.Prefix(null, requestId),
            Envelopes.Error("invalid_message", message, retryable: false));
    }

    /// <summary>Sends one request's messages in order, in one turn at the socket; false once the socket is closed or broken.</summary>
    private async Task<bool> SendAsync(ReadOnlyMemory<byte> prefix, params ReadOnlyMemory<byte>[] envelopes)
    {
        var cancellationToken = _lifetime.Token;
        try
        {
            await _sendLock.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        try
        {
            foreach (var envelope in envelopes)
            {
                if (_closed)
                {
                    return false;
                }

                _sendBuffer.ResetWrittenCount();
                if (SocketFrames.TryWrite(_sendBuffer, prefix.Span, envelope.Span))
                {
                    await _socket.SendAsync(_sendBuffer.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                }
            }

            return true;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The connection is gone; the receive loop fails too and ends the socket.
            _closed = true;
            return false;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends the close frame once no send is in flight; later sends are dropped.</summary>
    private async Task CloseAsync(WebSocketCloseStatus status, string description, bool awaitReply)
    {
        await _sendLock.WaitAsync(_lifetime.Token);
        try
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            if (awaitReply)
            {
                // Reads (and drops) the rest of what the client sends until its close frame, so the connection is not
                // reset under the close frame with unread data; bounded, for a client that never answers.
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.Token);
                timeout.CancelAfter(CloseHandshakeTimeout);
                await _socket.CloseAsync(status, description, timeout.Token);
            }
            else
            {
                await _socket.CloseOutputAsync(status, description, _lifetime.Token);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public void Dispose()
    {
        _lifetime.Dispose();
        _sendLock.Dispose();
    }

    /// <summary>A request of this socket; <see cref="StreamId"/> and <see cref="CancelRequested"/> are guarded by the socket's request list.</summary>
    private sealed class SocketRequest(string? requestId)
    {
        public string? RequestId => requestId;

        public string? StreamId { get; set; }

        public bool CancelRequested { get; set; }
    }
}
