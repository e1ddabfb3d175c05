using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace VixAspire.Gateway;

/// <summary>
/// How many streams and connections the gateway holds before it refuses. Each open stream costs the client's
/// socket, plus an upstream socket over HTTP/1.1 (over HTTP/2 many streams share one connection), and the
/// process may hold <see cref="OpenFiles.Limit"/> descriptors: past that it could not even accept.
/// </summary>
public sealed class CapacityOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Forward over cleartext HTTP/2 (the <c>streamapi_h2</c> cluster) rather than HTTP/1.1 (<c>streamapi</c>).</summary>
    public bool UpstreamHttp2 { get; set; } = true;

    /// <summary>Proxied requests at once; beyond it 503 with Retry-After. 0: three quarters of what the descriptors allow.</summary>
    [Range(0, 1_000_000)]
    public int MaxConcurrentStreams { get; set; }

    /// <summary>Client connections Kestrel holds, a hard stop above the stream limit. 0: what the descriptors leave.</summary>
    [Range(0, 1_000_000)]
    public int MaxConnections { get; set; }

    /// <summary>Sockets one stream holds: the client's, and over HTTP/1.1 the upstream's.</summary>
    public int SocketsPerStream => UpstreamHttp2 ? 1 : 2;

    public int EffectiveMaxConcurrentStreams => MaxConcurrentStreams > 0
        ? MaxConcurrentStreams
        : OpenFiles.Limit * 3 / 4 / SocketsPerStream;

    public int EffectiveMaxConnections => MaxConnections > 0
        ? MaxConnections
        : Math.Max(1, OpenFiles.Limit - OpenFiles.Reserve - (EffectiveMaxConcurrentStreams * (SocketsPerStream - 1)));
}

internal static class Capacity
{
    public static IServiceCollection AddCapacity(this IServiceCollection services)
    {
        services.AddOptions<CapacityOptions>().BindConfiguration(CapacityOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<CapacityOptions>>((kestrel, capacity) =>
        {
            kestrel.Limits.MaxConcurrentConnections = capacity.Value.EffectiveMaxConnections;
            // WebSockets count here too once upgraded; they are also proxied requests, so the stream limit holds them first.
            kestrel.Limits.MaxConcurrentUpgradedConnections = capacity.Value.EffectiveMaxConnections;
        });
        return services;
    }
}
