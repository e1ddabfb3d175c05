using Yarp.ReverseProxy.Forwarder;

namespace VixAspire.Gateway;

public static class GatewayExtensions
{
    /// <summary>
    /// YARP with routes and clusters from the <c>ReverseProxy</c> section, destinations through service
    /// discovery (one per address the service name resolves to, so every StreamApi replica). The forwarder's
    /// client is YARP's own, not one from IHttpClientFactory, so no resilience handler retries a POST.
    /// The routes name the API-key authorization policy and the per-client rate limiter in their config; a
    /// concurrency limit over all proxied requests refuses past capacity (see <see cref="CapacityOptions"/>).
    /// </summary>
    public static TBuilder AddGateway<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddApiKeyAuthentication();
        builder.Services.AddClientRateLimiter();
        builder.Services.AddRequestLimits();
        builder.Services.AddClientFaults();
        builder.Services.AddCapacity();
        builder.Services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
            .AddConfigFilter<UpstreamProtocol>()
            .AddTransforms(static context => context.AddClientIdentity())
            .AddServiceDiscoveryDestinationResolver();
        builder.Services.AddSingleton<IForwarderHttpClientFactory, UpstreamHttpClientFactory>();
        return builder;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.UseDemoPage();
        app.UseRequestLimits();
        app.UseClientFaults();
        // Authentication first, so the limiter knows the key; the limiter before authorization, so that
        // requests with a wrong key are limited per address too.
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        app.MapReverseProxy();
        return app;
    }
}

/// <summary>Marker for test hosts.</summary>
public sealed class GatewayMarker;
