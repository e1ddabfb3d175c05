using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace VixAspire.Gateway;

/// <summary>
/// Chooses the protocol to StreamApi. The routes name the <c>streamapi</c> cluster (HTTP/1.1: a connection per
/// open stream); with <c>Gateway:UpstreamHttp2</c> (the default) they go to its twin <c>streamapi_h2</c>, which
/// speaks cleartext HTTP/2 to each replica's <c>h2</c> endpoint, so that thousands of streams share a few
/// connections. A route with metadata <c>Http1Only</c> stays on HTTP/1.1: the WebSocket route, because YARP would
/// open the socket upstream as an HTTP/2 extended CONNECT (RFC 8441), which StreamApi's <c>GET /infer/ws</c> does
/// not match (405).
/// </summary>
public sealed class UpstreamProtocol(IOptionsMonitor<CapacityOptions> options) : IProxyConfigFilter
{
    public const string Http1Cluster = "streamapi";

    public const string Http2Cluster = "streamapi_h2";

    public const string Http1OnlyKey = "Http1Only";

    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel) => new(cluster);

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel) =>
        new(options.CurrentValue.UpstreamHttp2 && route.ClusterId == Http1Cluster && route.Metadata?.GetValueOrDefault(Http1OnlyKey) != "true"
            ? route with { ClusterId = Http2Cluster }
            : route);
}
