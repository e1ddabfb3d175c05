using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Starts a generation for any front end (SSE, OpenAI-compatible, WebSocket): takes one of the client's
/// concurrent-stream slots, then queues the request. The slot comes back as a <see cref="StreamSlot"/> lease
/// for the caller to hold while it follows the stream; it counts until the stream ends, even if the client leaves.
/// While Redis is not connected it refuses at once (503).
/// </summary>
internal sealed class StreamStarter(
    IConnectionMultiplexer redis,
    RequestQueue queue,
    ClientSlots slots,
    StreamAttachments attachments,
    StreamApiTelemetry telemetry,
    ILogger<StreamStarter> logger)
{
    private static readonly RequestFault TooManyStreams = new(StatusCodes.Status429TooManyRequests, "Too many concurrent streams",
        "This client has as many streams open as it may (Streaming:MaxConcurrentStreamsPerClient); retry when one ends.", "too_many_streams");

    private static readonly RequestFault QueueFull = new(StatusCodes.Status503ServiceUnavailable, "Queue full",
        "More requests are waiting for a worker than the queue holds (Streaming:MaxQueueLength); retry shortly.", "queue_full");

    /// <summary>The stream's id and the slot it holds, or the refusal (429 or 503) that each front end renders in its own error format.</summary>
    public readonly record struct Started(string Id, StreamSlot? Slot, RequestFault? Refusal);

    /// <summary>Starts a request that came over HTTP: the client is the caller's key or address, and a refusal sets <c>Retry-After</c>.</summary>
    public async Task<Started> StartAsync(HttpContext context, InferenceRequest request)
    {
        var started = await StartAsync(request, ClientIdentity.Of(context), context.RequestAborted);
        if (started.Refusal is not null)
        {
            context.Response.Headers.RetryAfter = RequestFault.RetryAfterSeconds;
        }

        return started;
    }

    public async Task<Started> StartAsync(InferenceRequest request, ClientIdentity client, CancellationToken cancellationToken)
    {
        var id = RequestQueue.NewId();
        if (!redis.IsConnected)
        {
            telemetry.Refused(RedisFaults.Unavailable.Code);
            return new(id, null, RedisFaults.Unavailable);
        }

        if (!await slots.TryAcquireAsync(client.Id, id, cancellationToken))
        {
            telemetry.Refused(TooManyStreams.Code);
            return new(id, null, TooManyStreams);
        }

        // The client is attached as the stream is created, in the same script, rather than in a round trip of its own.
        var slot = new StreamSlot(slots, client.Id, id, attachMember: null, logger) { Attached = attachments.NewLease(id), Start = Envelopes.Start(id, request.Model) };
        bool queued;
        try
        {
            queued = await queue.EnqueueAsync(id, slot.Start, request, client, slot.Attached);
        }
        catch
        {
            await slot.ReleaseUnqueuedAsync();
            throw;
        }

        if (!queued)
        {
            await slot.ReleaseUnqueuedAsync();
            telemetry.Refused(QueueFull.Code);
            return new(id, null, QueueFull);
        }

        StreamApiTelemetry.Queued(id);
        return new(id, slot, null);
    }

    /// <summary>
    /// Takes a slot for attaching to stream <paramref name="id"/>: an attachment counts against the client's limit
    /// while it lasts. Null with a 429 (and <c>Retry-After</c>) when the client has no slot left.
    /// </summary>
    public async Task<(StreamSlot? Slot, RequestFault? Refusal)> AttachAsync(HttpContext context, string id)
    {
        var client = ClientIdentity.Of(context).Id;
        var member = $"attach:{Guid.NewGuid():N}";
        if (!await slots.TryAcquireAsync(client, member, context.RequestAborted))
        {
            telemetry.Refused(TooManyStreams.Code);
            context.Response.Headers.RetryAfter = RequestFault.RetryAfterSeconds;
            return (null, TooManyStreams);
        }

        return (new StreamSlot(slots, client, id, member, logger), null);
    }
}
