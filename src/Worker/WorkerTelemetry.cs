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
    }

    public void RecordTimeToFirstToken(TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds);
        Activity.Current?.AddEvent(new ActivityEvent("gen_ai.first_token"));
    }

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
