using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace VixAspire.StreamApi;

/// <summary>The API's own trace source and instruments, named after OpenTelemetry's GenAI conventions.</summary>
internal sealed class StreamApiTelemetry
{
    public static readonly ActivitySource Source = new(TelemetrySources.StreamApi);

    private readonly Histogram<double> _timeToFirstToken;

    public StreamApiTelemetry(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(TelemetrySources.StreamApi);
        _timeToFirstToken = meter.CreateHistogram<double>(
            "gen_ai.server.time_to_first_token", unit: "s",
            description: "Time from the request reaching the API to its first token being written to the client.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 15] });
    }

    public void RecordTimeToFirstToken(TimeSpan elapsed)
    {
        _timeToFirstToken.Record(elapsed.TotalSeconds);
        Activity.Current?.AddEvent(new ActivityEvent("gen_ai.first_token_sent"));
    }
}
