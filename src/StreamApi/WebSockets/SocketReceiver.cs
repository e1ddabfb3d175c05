using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// Reads one socket's messages: whole messages up to the size limit (one byte more, or frames that declare more,
/// close the socket with 1009), each parsed and handed to the socket's requests. A message that is not a valid request or cancel is answered
/// with <c>inference.error</c> and the socket stays open.
/// </summary>
internal sealed class SocketReceiver(
    WebSocket socket,
    SocketSender sender,
    SocketRequests requests,
    FrameLimit frames,
    InferenceRequestReader reader,
    ILogger<SocketReceiver> logger)
{
    private const int ReceiveChunkBytes = 4096;
    private const int KeptReceiveBufferBytes = 64 * 1024;

    /// <summary>Receives until the client closes, the socket breaks or <paramref name="cancellationToken"/> (its lifetime) ends.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var limit = frames.Limit;
        var message = new ArrayBufferWriter<byte>(ReceiveChunkBytes);
        while (true)
        {
            ValueWebSocketReceiveResult result;
            do
            {
                // Never read more than one byte past the limit, however large the client's message.
                var room = Math.Min(ReceiveChunkBytes, limit + 1 - message.WrittenCount);
                if (await ReceiveAsync(message.GetMemory(room)[..room], cancellationToken) is not { } received)
                {
                    await CloseTooBigAsync(limit, cancellationToken);
                    return;
                }

                result = received;
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Log.WebSocketClosed(logger, (int?)socket.CloseStatus);
                    await sender.CloseAsync(WebSocketCloseStatus.NormalClosure, "Closed by the client.", awaitReply: false, cancellationToken);
                    return;
                }

                message.Advance(result.Count);
                if (message.WrittenCount > limit)
                {
                    await CloseTooBigAsync(limit, cancellationToken);
                    return;
                }
            }
            while (!result.EndOfMessage);

            await DispatchAsync(result.MessageType, message.WrittenMemory, cancellationToken);
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

    /// <summary>
    /// The next part of a message; null if, while its bytes are awaited, the frames declare a message over the limit.
    /// The pending receive is left to the close, which waits for it (or, for a client that sends nothing more, aborts it).
    /// </summary>
    private async ValueTask<ValueWebSocketReceiveResult?> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var receive = socket.ReceiveAsync(buffer, cancellationToken);
        if (receive.IsCompleted)
        {
            return await receive;
        }

        var pending = receive.AsTask();
        if (await Task.WhenAny(pending, frames.Exceeded) == pending)
        {
            return await pending;
        }

        _ = pending.ContinueWith(static t => t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return null;
    }

    /// <summary>Closes with 1009, reading (and dropping) what the client still sends until its close, for a bounded time.</summary>
    private async Task CloseTooBigAsync(int limit, CancellationToken cancellationToken)
    {
        Log.WebSocketMessageTooBig(logger, limit);
        await sender.CloseAsync(WebSocketCloseStatus.MessageTooBig,
            $"A message may be at most {limit} bytes (Streaming:MaxRequestBodyBytes).", awaitReply: true, cancellationToken);
    }

    private async Task DispatchAsync(WebSocketMessageType type, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var receivedAt = Stopwatch.GetTimestamp();
        if (type != WebSocketMessageType.Text)
        {
            await RejectAsync(null, "Messages must be text frames, each holding one JSON object.", cancellationToken);
            return;
        }

        ClientMessage? message;
        try
        {
            message = JsonSerializer.Deserialize(data.Span, SocketJsonContext.Default.ClientMessage);
        }
        catch (JsonException ex)
        {
            await RejectAsync(null, $"The message is not valid JSON for this endpoint: {RequestFault.Clip(ex.Message)}", cancellationToken);
            return;
        }

        switch (message?.Type)
        {
            case ClientMessage.RequestType:
                await StartAsync(message, receivedAt, cancellationToken);
                break;
            case ClientMessage.CancelType:
                await requests.CancelAsync(message.RequestId, message.StreamId, cancellationToken);
                break;
            case null:
                await RejectAsync(message?.RequestId,
                    $"A message must be a JSON object with a 'type': '{ClientMessage.RequestType}' or '{ClientMessage.CancelType}'.", cancellationToken);
                break;
            default:
                await RejectAsync(message.RequestId,
                    $"Unknown message type '{RequestFault.Clip(message.Type)}'; expected '{ClientMessage.RequestType}' or '{ClientMessage.CancelType}'.", cancellationToken);
                break;
        }
    }

    /// <summary>Validates the payload as <c>POST /infer/stream</c> does; a mistake ends the request at once (error, then end).</summary>
    private async Task StartAsync(ClientMessage message, long receivedAt, CancellationToken cancellationToken)
    {
        InferenceRequestBody? body = null;
        RequestFault? invalid = null;
        if (message.Payload is not { ValueKind: JsonValueKind.Object } payload)
        {
            invalid = new RequestFault(StatusCodes.Status400BadRequest, "Invalid request",
                "'payload' must be a JSON object: the body of POST /infer/stream.", "invalid_request");
        }
        else
        {
            (body, invalid) = BodyJson.Read(payload);
        }

        var prefix = MessagePrefixes.For(null, message.RequestId);
        if (invalid is not null)
        {
            await sender.SendFailureAsync(prefix, invalid.Code, invalid.Detail, retryable: false, cancellationToken);
            return;
        }

        var read = reader.Validate(body!);
        if (read.Fault is { } fault)
        {
            await sender.SendFailureAsync(prefix, fault.Code, fault.Detail, fault.Retryable, cancellationToken);
            return;
        }

        requests.Start(message.RequestId, read.Request!, receivedAt, cancellationToken);
    }

    private async Task RejectAsync(string? requestId, string reason, CancellationToken cancellationToken)
    {
        Log.WebSocketMessageRejected(logger, reason);
        await sender.SendAsync(requestId is null ? MessagePrefixes.Untagged : MessagePrefixes.For(null, requestId),
            Envelopes.Error("invalid_message", reason, retryable: false), cancellationToken);
    }
}
