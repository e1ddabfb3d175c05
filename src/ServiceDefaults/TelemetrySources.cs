using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>The ActivitySource and Meter names of VixAspire's own telemetry, registered for export.</summary>
public static class TelemetrySources
{
    public const string StreamApi = "VixAspire.StreamApi";
    public const string Worker = "VixAspire.Worker";

    // The gateway has no source of its own: YARP's forwarding shows through the ASP.NET Core and HttpClient instrumentation.
    public static readonly string[] ActivitySources = [StreamApi, Worker];
    public static readonly string[] Meters = [StreamApi, Worker];

    /// <summary>
    /// Bucket bounds (seconds) for time-to-first-token histograms, in the API and the worker alike, so the two
    /// can be compared bucket for bucket (OpenTelemetry GenAI's boundaries, from 10 ms to 15 s).
    /// </summary>
    public static readonly double[] LatencyBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 15];

    /// <summary>
    /// Redis command spans are off unless <c>Telemetry:RedisCommandSpans</c> is true: a stream issues one or
    /// two commands per batch, and background loops poll every few seconds, which would bury the request traces.
    /// </summary>
    public static bool RedisCommandSpans(IConfiguration configuration) => configuration.GetValue("Telemetry:RedisCommandSpans", false);
}
