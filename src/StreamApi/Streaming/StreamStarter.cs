using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Starts a generation for any front end (SSE, OpenAI-compatible, WebSocket): takes one of the client's
/// concurrent-stream slots, then queues the request. The slot is the caller's to release, through the
/// <see cref="StreamSession"/> that follows the stream.
/// </summary>
internal sealed class StreamStarter(RequestQueue queue, StreamControl control, StreamApiTelemetry telemetry)
{
    private static readonly RequestFault TooManyStreams = new(StatusCodes.Status429TooManyRequests, "Too many concurrent streams",
        "This client has as many streams open as it may (Streaming:MaxConcurrentStreamsPerClient); retry when one ends.", "too_many_streams");

    private static readonly RequestFault QueueFull = new(StatusCodes.Status503ServiceUnavailable, "Queue full",
        "More requests are waiting for a worker than the queue holds (Streaming:MaxQueueLength); retry shortly.", "queue_full");

    /// <summary>Seconds a refused client should wait (the <c>Retry-After</c> of HTTP front ends).</summary>
    public const string RetryAfterSeconds = "1";

    /// <summary>The stream's id, or the refusal (429 or 503) that each front end renders in its own error format.</summary>
    public readonly record struct Started(string Id, RequestFault? Refusal);

    public async Task<Started> StartAsync(InferenceRequest request, string client, CancellationToken cancellationToken)
    {
        var id = RequestQueue.NewId();
        if (!await control.TryAcquireClientSlotAsync(client, id, cancellationToken))
        {
            telemetry.Refused(TooManyStreams.Code);
            return new(id, TooManyStreams);
        }

        bool queued;
        try
        {
            queued = await queue.EnqueueAsync(id, request);
        }
        catch
        {
            await control.ReleaseClientSlotAsync(client, id);
            throw;
        }

        if (!queued)
        {
            await control.ReleaseClientSlotAsync(client, id);
            telemetry.Refused(QueueFull.Code);
            return new(id, QueueFull);
        }

        StreamApiTelemetry.Queued(id);
        return new(id, null);
    }
}
