using System.Globalization;
using Yarp.ReverseProxy.Forwarder;

namespace VixAspire.Gateway;

/// <summary>
/// YARP's forwarder client with an idle timeout for pooled upstream connections that is shorter than the
/// upstream's keep-alive timeout. When the upstream closes an idle connection at the moment the gateway
/// reuses it, a POST fails with a 502: the request is on the wire, so neither the handler nor YARP may
/// resend it (it could have reached the API). Closing idle connections first on our side keeps that race
/// from happening. The cluster's <c>Metadata:PooledConnectionIdleTimeout</c> sets it; 30 s by default,
/// well under Kestrel's 130 s keep-alive and the usual 60 s of load balancers. Over HTTP/2 the same timeout
/// closes a connection without streams before Kestrel would; and were Kestrel first, its GOAWAY names the last
/// stream it took, so a request it never saw is sent again on a new connection rather than failing.
/// </summary>
internal sealed class UpstreamHttpClientFactory(ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger)
{
    public const string IdleTimeoutKey = "PooledConnectionIdleTimeout";

    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.PooledConnectionIdleTimeout = IdleTimeout(context.NewMetadata);
        // HTTP/2: a replica that vanished without closing its connections is found by a ping its streams would not send.
        handler.KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests;
        handler.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
    }

    protected override bool CanReuseOldClient(ForwarderHttpClientContext context) =>
        base.CanReuseOldClient(context) && IdleTimeout(context.OldMetadata) == IdleTimeout(context.NewMetadata);

    public static TimeSpan IdleTimeout(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null || !metadata.TryGetValue(IdleTimeoutKey, out var value))
        {
            return DefaultIdleTimeout;
        }

        return TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var timeout) && timeout > TimeSpan.Zero
            ? timeout
            : throw new InvalidOperationException($"Cluster metadata {IdleTimeoutKey} must be a positive time span (was '{value}').");
    }
}
