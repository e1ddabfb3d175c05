using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// Runs one WebSocket request: starts its generation, then sends each event the follower yields as a text message,
/// the stored envelope with the stream and request ids spliced in front. A request that fails here, however
/// unexpectedly, still gets <c>inference.error</c> then <c>inference.end</c> unless it had its end.
/// </summary>
internal sealed class SocketRequestRunner(
    StreamStarter starter,
    StreamFollower follower,
    StreamCancellation cancellation,
    StreamApiTelemetry telemetry,
    SocketSender sender,
    ClientIdentity client,
    ILogger<SocketRequestRunner> logger)
{
    public async Task RunAsync(SocketRequest request, InferenceRequest inference, long receivedAt, CancellationToken cancellationToken)
    {
        // One span per request, so each queue entry carries its own traceparent rather than the socket's.
        using var activity = StreamApiTelemetry.Source.StartActivity("WebSocket inference.request");
        ReadOnlyMemory<byte> prefix = MessagePrefixes.For(null, request.RequestId);
        string? streamId = null;
        var ended = false;
        try
        {
            var started = await starter.StartAsync(inference, client, cancellationToken);
            if (started.Refusal is { } refused)
            {
                ended = true;
                await sender.SendFailureAsync(prefix, refused.Code, refused.Detail, refused.Retryable, cancellationToken);
                return;
            }

            var slot = started.Slot;
            streamId = started.Id;
            prefix = MessagePrefixes.For(streamId, request.RequestId);
            if (request.CancelCameFirst(streamId))
            {
                await CancelAsync(request.RequestId, streamId, cancellationToken);
            }

            await foreach (var batch in follower.FollowAsync(streamId, afterId: null, receivedAt, slot, cancellationToken))
            {
                foreach (var item in batch)
                {
                    // Heartbeats are the socket's own pings.
                    if (item.Kind == StreamItemKind.Heartbeat)
                    {
                        continue;
                    }

                    ended |= item.Kind == StreamItemKind.End;
                    if (!await sender.SendAsync(prefix, item.Envelope, cancellationToken))
                    {
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (!ended)
        {
            if (streamId is null && ex is RedisException or TimeoutException)
            {
                Log.WebSocketStartFailed(logger, ex);
                await sender.SendFailureAsync(prefix, RedisFaults.Unavailable.Code, "The request could not be queued; retry shortly.", retryable: true, cancellationToken);
            }
            else
            {
                Log.WebSocketRequestFailed(logger, ex, streamId);
                await sender.SendFailureAsync(prefix, "stream_unavailable", "The request failed in the API; send it again.", retryable: true, cancellationToken);
            }
        }
    }

    /// <summary>Cancels as DELETE does: the worker stops and writes the end (reason <c>cancelled</c>), which the request's follower sends.</summary>
    public async Task CancelAsync(string? requestId, string streamId, CancellationToken cancellationToken)
    {
        try
        {
            if (await cancellation.CancelAsync(streamId, client.Key, cancellationToken) == CancelScripts.Reply.Cancelled)
            {
                telemetry.Cancelled(CancelSources.WebSocket);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.WebSocketCancelFailed(logger, ex, streamId);
            await sender.SendAsync(MessagePrefixes.For(streamId, requestId),
                Envelopes.Error("cancel_failed", $"The cancel could not be delivered; send it again or DELETE /infer/stream/{streamId}.", retryable: true),
                cancellationToken);
        }
    }
}
