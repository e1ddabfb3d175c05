using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Starts a generation for any front end (SSE, OpenAI-compatible, WebSocket): takes one of the client's
/// concurrent-stream slots, then queues the request. The slot comes back as a <see cref="StreamSlot"/> lease
/// for the caller to hold while it follows the stream. While Redis is not connected it refuses at once (503).
/// </summary>
internal sealed class StreamStarter(IConnectionMultiplexer redis, RequestQueue queue, StreamControl control, StreamApiTelemetry telemetry, ILogger<StreamStarter> logger)
{
    private static readonly RequestFault TooManyStreams = new(StatusCodes.Status429TooManyRequests, "Too many concurrent streams",
        "This client has as many streams open as it may (Streaming:MaxConcurrentStreamsPerClient); retry when one ends.", "too_many_streams");

    private static readonly RequestFault QueueFull = new(StatusCodes.Status503ServiceUnavailable, "Queue full",
        "More requests are waiting for a worker than the queue holds (Streaming:MaxQueueLength); retry shortly.", "queue_full");

    /// <summary>The stream's id and the slot it holds, or the refusal (429 or 503) that each front end renders in its own error format.</summary>
    public readonly record struct Started(string Id, StreamSlot? Slot, RequestFault? Refusal);

    /// <summary>Starts a request that came over HTTP: the client is the caller's address, and a refusal sets <c>Retry-After</c>.</summary>
    public async Task<Started> StartAsync(HttpContext context, InferenceRequest request)
    {
        var started = await StartAsync(request, ClientIdentity.Of(context), context.RequestAborted);
        if (started.Refusal is not null)
        {
            context.Response.Headers.RetryAfter = RequestFault.RetryAfterSeconds;
        }

        return started;
    }

    public async Task<Started> StartAsync(InferenceRequest request, string client, CancellationToken cancellationToken)
    {
        var id = RequestQueue.NewId();
        if (!redis.IsConnected)
        {
            telemetry.Refused(RedisFaults.Unavailable.Code);
            return new(id, null, RedisFaults.Unavailable);
        }

        if (!await control.TryAcquireClientSlotAsync(client, id, cancellationToken))
        {
            telemetry.Refused(TooManyStreams.Code);
            return new(id, null, TooManyStreams);
        }

        var slot = new StreamSlot(control, client, id, logger);
        bool queued;
        try
        {
            queued = await queue.EnqueueAsync(id, request);
        }
        catch
        {
            await slot.DisposeAsync();
            throw;
        }

        if (!queued)
        {
            await slot.DisposeAsync();
            telemetry.Refused(QueueFull.Code);
            return new(id, null, QueueFull);
        }

        StreamApiTelemetry.Queued(id);
        return new(id, slot, null);
    }
}
