namespace VixAspire.Gateway;

public static class GatewayExtensions
{
    /// <summary>YARP with routes and clusters from the <c>ReverseProxy</c> section, destinations through service discovery.</summary>
    public static TBuilder AddGateway<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
            .AddServiceDiscoveryDestinationResolver();
        return builder;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapReverseProxy();
        return app;
    }
}

/// <summary>Marker for test hosts.</summary>
public sealed class GatewayMarker;
