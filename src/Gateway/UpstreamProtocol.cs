using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace VixAspire.Gateway;

/// <summary>
/// Chooses the protocol to StreamApi. The routes name the <c>streamapi</c> cluster (HTTP/1.1: a connection per
/// open stream); with <c>Gateway:UpstreamHttp2</c> (the default) they go to its twin <c>streamapi_h2</c>, which
/// speaks cleartext HTTP/2 to each replica's <c>h2</c> endpoint, so that thousands of streams share a few
/// connections. WebSockets go the same way: YARP opens them upstream as HTTP/2 extended CONNECT (RFC 8441).
/// </summary>
public sealed class UpstreamProtocol(IOptionsMonitor<CapacityOptions> options) : IProxyConfigFilter
{
    public const string Http1Cluster = "streamapi";

    public const string Http2Cluster = "streamapi_h2";

    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel) => new(cluster);

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel) =>
        new(options.CurrentValue.UpstreamHttp2 && route.ClusterId == Http1Cluster
            ? route with { ClusterId = Http2Cluster }
            : route);
}
