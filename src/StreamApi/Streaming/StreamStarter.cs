using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Starts a generation for any front end (SSE, OpenAI-compatible, WebSocket): takes one of the client's
/// concurrent-stream slots, then queues the request. The slot is the caller's to release, through the
/// <see cref="StreamSession"/> that follows the stream.
/// </summary>
internal sealed class StreamStarter(RequestQueue queue, StreamControl control, StreamApiTelemetry telemetry)
{
    public enum Outcome
    {
        Started,
        TooManyStreams,
        QueueFull,
    }

    public readonly record struct Started(Outcome Outcome, string Id);

    public async Task<Started> StartAsync(InferenceRequest request, string client, CancellationToken cancellationToken)
    {
        var id = RequestQueue.NewId();
        if (!await control.TryAcquireClientSlotAsync(client, id, cancellationToken))
        {
            telemetry.Refused("too_many_streams");
            return new(Outcome.TooManyStreams, id);
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
            telemetry.Refused("queue_full");
            return new(Outcome.QueueFull, id);
        }

        StreamApiTelemetry.Queued(id);
        return new(Outcome.Started, id);
    }
}
