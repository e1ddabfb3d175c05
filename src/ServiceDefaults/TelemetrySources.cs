namespace Microsoft.Extensions.Hosting;

/// <summary>The ActivitySource and Meter names of VixAspire's own telemetry, registered for export.</summary>
public static class TelemetrySources
{
    public const string StreamApi = "VixAspire.StreamApi";
    public const string Worker = "VixAspire.Worker";
    public const string Gateway = "VixAspire.Gateway";

    public static readonly string[] ActivitySources = [StreamApi, Worker, Gateway, "StackExchange.Redis"];
    public static readonly string[] Meters = [StreamApi, Worker, Gateway];
}
