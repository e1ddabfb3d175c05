using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VixAspire.Worker;

/// <summary>The worker's trace source and instruments.</summary>
internal sealed class WorkerTelemetry
{
    public static readonly ActivitySource Source = new(TelemetrySources.Worker);

    private readonly Histogram<double> _timeToFirstToken;
    private readonly Counter<long> _outputTokens;
    private readonly UpDownCounter<long> _activeGenerations;

    public WorkerTelemetry(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(TelemetrySources.Worker);
        _timeToFirstToken = meter.CreateHistogram<double>(
            "vix.worker.time_to_first_token", unit: "s",
            description: "Time from a worker picking a request up to the provider's first token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 15] });
        _outputTokens = meter.CreateCounter<long>("vix.worker.output_tokens", unit: "{token}", description: "Token events appended.");
        _activeGenerations = meter.CreateUpDownCounter<long>("vix.worker.active_generations", unit: "{generation}", description: "Generations running now.");
    }

    public void RecordTimeToFirstToken(TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds);
        Activity.Current?.AddEvent(new ActivityEvent("gen_ai.first_token"));
    }

    public void GenerationStarted() => _activeGenerations.Add(1);

    public void GenerationEnded(int tokens, string reason)
    {
        _activeGenerations.Add(-1);
        _outputTokens.Add(tokens, new KeyValuePair<string, object?>("vix.end_reason", reason));
        Activity.Current?.AddEvent(new ActivityEvent("vix.end", tags: new ActivityTagsCollection { ["vix.end_reason"] = reason }));
    }
}
