using Yarp.ReverseProxy.Forwarder;

namespace VixAspire.Gateway;

public static class GatewayExtensions
{
    /// <summary>
    /// YARP with routes and clusters from the <c>ReverseProxy</c> section, destinations through service
    /// discovery (one per address the service name resolves to, so every StreamApi replica). The forwarder's
    /// client is YARP's own, not one from IHttpClientFactory, so no resilience handler retries a POST.
    /// </summary>
    public static TBuilder AddGateway<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
            .AddServiceDiscoveryDestinationResolver();
        builder.Services.AddSingleton<IForwarderHttpClientFactory, UpstreamHttpClientFactory>();
        return builder;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.UseDemoPage();
        app.MapReverseProxy();
        return app;
    }
}

/// <summary>Marker for test hosts.</summary>
public sealed class GatewayMarker;
