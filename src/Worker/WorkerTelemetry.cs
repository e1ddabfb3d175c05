using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VixAspire.Worker;

/// <summary>The worker's trace source and instruments.</summary>
internal sealed class WorkerTelemetry
{
    public static readonly ActivitySource Source = new(TelemetrySources.Worker);

    private static readonly double[] DurationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 120];

    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _timePerOutputToken;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _outputTokens;
    private readonly Counter<long> _errors;
    private readonly UpDownCounter<long> _activeGenerations;
    private readonly Histogram<double> _flushDuration;
    private readonly Histogram<int> _streamsPerCall;

    public WorkerTelemetry(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(TelemetrySources.Worker);
        _timeToFirstToken = meter.CreateHistogram<double>(
            "vix.worker.time_to_first_token", unit: "s",
            description: "Time from a worker picking a request up to the provider's first token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TelemetrySources.LatencyBuckets });
        _timePerOutputToken = meter.CreateHistogram<double>(
            "gen_ai.server.time_per_output_token", unit: "s",
            description: "Time between output tokens after the first, per generation.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.5] });
        _requestDuration = meter.CreateHistogram<double>(
            "gen_ai.server.request.duration", unit: "s",
            description: "Time from a worker picking a request up to its stream's end, by end reason.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _outputTokens = meter.CreateCounter<long>("vix.worker.output_tokens", unit: "{token}", description: "Token events appended.");
        _errors = meter.CreateCounter<long>("vix.worker.errors", unit: "{error}", description: "inference.error events written, by code.");
        _activeGenerations = meter.CreateUpDownCounter<long>("vix.worker.active_generations", unit: "{generation}", description: "Generations running now.");
        _flushDuration = meter.CreateHistogram<double>(
            "vix.worker.stream_flush.duration", unit: "s",
            description: "One group commit of token-stream batches: the longest a token waits behind the one in flight.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1] });
        _streamsPerCall = meter.CreateHistogram<int>(
            "vix.worker.stream_flush.streams", unit: "{stream}", description: "Streams whose batches one script call carried.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
    }

    public void RecordTimeToFirstToken(TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds);
        Activity.Current?.AddEvent(new ActivityEvent("gen_ai.first_token"));
    }

    public void StreamsFlushed(TimeSpan elapsed) => _flushDuration.Record(elapsed.TotalSeconds);

    public void StreamsPerCall(int streams) => _streamsPerCall.Record(streams);

    public void GenerationStarted() => _activeGenerations.Add(1);

    public void RecordTimePerOutputToken(TimeSpan perToken) => _timePerOutputToken.Record(perToken.TotalSeconds);

    public void Error(string code) => _errors.Add(1, new KeyValuePair<string, object?>("error.type", code));

    public void GenerationEnded(string model, int tokens, string reason, TimeSpan duration)
    {
        _activeGenerations.Add(-1);
        var reasonTag = new KeyValuePair<string, object?>("vix.end_reason", reason);
        _outputTokens.Add(tokens, reasonTag);
        _requestDuration.Record(duration.TotalSeconds, reasonTag, new KeyValuePair<string, object?>("gen_ai.request.model", model));
        Activity.Current?.AddEvent(new ActivityEvent("vix.end", tags: new ActivityTagsCollection { ["vix.end_reason"] = reason }));
    }
}

/// <summary>
/// The <c>vix.end_reason</c> of a run beyond the stream end reasons (<see cref="Contracts.EndReasons"/>), which a run
/// records as they are.
/// </summary>
internal static class RunReasons
{
    /// <summary>The stream had its end already: the entry's earlier worker died before settling it.</summary>
    public const string AlreadyEnded = "already_ended";

    /// <summary>Another worker took the stream over while this one stalled: this run's writes were refused.</summary>
    public const string Fenced = "fenced";

    /// <summary>No end reason: the request was handed back before the first token, or a write failed before the run had one.</summary>
    public const string Unsettled = "unsettled";
}
