using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>The ActivitySource and Meter names of VixAspire's own telemetry, registered for export.</summary>
public static class TelemetrySources
{
    public const string StreamApi = "VixAspire.StreamApi";
    public const string Worker = "VixAspire.Worker";
    public const string Gateway = "VixAspire.Gateway";

    public static readonly string[] ActivitySources = [StreamApi, Worker, Gateway];
    public static readonly string[] Meters = [StreamApi, Worker, Gateway];


    /// <summary>
    /// Redis command spans are off unless <c>Telemetry:RedisCommandSpans</c> is true: a stream issues one or
    /// two commands per batch, and background loops poll every few seconds, which would bury the request traces.
    /// </summary>
    public static bool RedisCommandSpans(IConfiguration configuration) => configuration.GetValue("Telemetry:RedisCommandSpans", false);
}
