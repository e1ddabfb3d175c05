using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace VixAspire.LoadTest;

/// <summary>
/// The load test's own figures as OpenTelemetry metrics, so they sit beside the services' in the dashboard.
/// Exported over OTLP only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the AppHost sets it).
/// </summary>
internal sealed class LoadTestMetrics : IDisposable
{
    public const string MeterName = "VixAspire.LoadTest";

    // GenAI semantic conventions' boundaries for time to first token, used for the gaps too.
    private static readonly double[] LatencyBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Counter<long> _streams;
    private readonly Counter<long> _tokens;

    public LoadTestMetrics()
    {
        var advice = new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets };
        _timeToFirstToken = _meter.CreateHistogram("loadtest.time_to_first_token", unit: "s",
            description: "Time from sending the request to receiving the first token event.", advice: advice);
        _interTokenLatency = _meter.CreateHistogram("loadtest.inter_token_latency", unit: "s",
            description: "Time between consecutive token events of a stream.", advice: advice);
        _streams = _meter.CreateCounter<long>("loadtest.streams", unit: "{stream}", description: "Streams finished, by outcome.");
        _tokens = _meter.CreateCounter<long>("loadtest.tokens", unit: "{token}", description: "Token events received.");
    }

    /// <summary>An OTLP meter provider for this meter when the environment asks for one; dispose it to flush.</summary>
    public static MeterProvider? StartOtlpExport()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")))
        {
            return null;
        }

        var builder = Sdk.CreateMeterProviderBuilder().AddMeter(MeterName).AddOtlpExporter();
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME")))
        {
            builder.ConfigureResource(resource => resource.AddService("loadtest"));
        }

        return builder.Build();
    }

    public void Record(StreamResult result, string model)
    {
        var modelTag = new KeyValuePair<string, object?>("gen_ai.request.model", model);
        if (result.TimeToFirstToken is { } ttft)
        {
            _timeToFirstToken.Record(ttft.TotalSeconds, modelTag);
        }

        foreach (var gap in result.InterTokenGaps)
        {
            _interTokenLatency.Record(gap.TotalSeconds, modelTag);
        }

        _tokens.Add(result.Tokens, modelTag);
        if (result.Failure is { } failure)
        {
            _streams.Add(1, modelTag, new("outcome", "failed"), new("error.type", failure));
        }
        else
        {
            _streams.Add(1, modelTag, new("outcome", result.Interrupted ? "interrupted" : "completed"));
        }
    }

    public void Dispose() => _meter.Dispose();
}
