using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VixAspire.StreamApi;

/// <summary>
/// The API's own trace source and instruments, named after OpenTelemetry's GenAI conventions where they exist
/// (<c>gen_ai.server.*</c>) and <c>vix.*</c> otherwise. Span events go on the request's span.
/// </summary>
/// <summary>What cancelled a stream, as the <c>vix.cancel.source</c> tag of the cancellations counter says.</summary>
internal static class CancelSources
{
    /// <summary><c>DELETE /infer/stream/{id}</c>.</summary>
    public const string Delete = "delete";

    /// <summary>No client was attached for the disconnect grace.</summary>
    public const string Disconnect = "disconnect";

    /// <summary>A WebSocket client's <c>inference.cancel</c>.</summary>
    public const string WebSocket = "websocket";
}

internal sealed class StreamApiTelemetry
{
    public static readonly ActivitySource Source = new(TelemetrySources.StreamApi);

    private readonly Histogram<double> _timeToFirstToken;
    private readonly UpDownCounter<long> _activeStreams;
    private readonly Counter<long> _cancellations;
    private readonly Counter<long> _refusals;

    public StreamApiTelemetry(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(TelemetrySources.StreamApi);
        _timeToFirstToken = meter.CreateHistogram<double>(
            "gen_ai.server.time_to_first_token", unit: "s",
            description: "Time from the request reaching the API to its first token being written to the client.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TelemetrySources.LatencyBuckets });
        _activeStreams = meter.CreateUpDownCounter<long>("vix.streams.active", unit: "{client}",
            description: "Clients following a stream on this replica (SSE, OpenAI-compatible and WebSocket).");
        _cancellations = meter.CreateCounter<long>("vix.cancellations", unit: "{stream}",
            description: "Generations cancelled, by source (delete, disconnect).");
        _refusals = meter.CreateCounter<long>("vix.requests.refused", unit: "{request}",
            description: "Requests refused before a stream started, by reason (too_many_streams, queue_full, redis_unavailable).");
        meter.CreateObservableGauge("vix.queue.depth", () => QueueSample.Depth, unit: "{request}",
            description: "Requests in the queue: waiting for a worker or running.");
        meter.CreateObservableGauge("vix.queue.pending", () => QueueSample.Pending, unit: "{request}",
            description: "Requests delivered to a worker and not yet acknowledged.");
    }

    /// <summary>The last queue sample (refreshed in the background, so collecting metrics never waits on Redis).</summary>
    public (long Depth, long Pending) QueueSample { get; set; }

    public void RecordTimeToFirstToken(TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds);
        Activity.Current?.AddEvent(new ActivityEvent("gen_ai.first_token_sent"));
    }

    public static void Queued(string id) =>
        Activity.Current?.SetTag("vix.request.id", id).AddEvent(new ActivityEvent("vix.queued"));

    public static void EndSent(string reason) =>
        Activity.Current?.AddEvent(new ActivityEvent("vix.end_sent", tags: new ActivityTagsCollection { ["vix.end_reason"] = reason }));

    public void StreamOpened() => _activeStreams.Add(1);

    public void StreamClosed() => _activeStreams.Add(-1);

    public void Cancelled(string source) => _cancellations.Add(1, new KeyValuePair<string, object?>("vix.cancel.source", source));

    public void Refused(string reason) => _refusals.Add(1, new KeyValuePair<string, object?>("vix.refusal.reason", reason));
}
