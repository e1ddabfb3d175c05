using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace VixAspire.Gateway;

/// <summary>
/// Requests per second each client may send through the proxied routes: a token bucket per API key name, or per
/// remote address while keys are off. 0 (the default) turns it off.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "Gateway:RateLimit";

    public const string PolicyName = "per-client";

    [Range(0, 1_000_000)]
    public int RequestsPerSecond { get; set; }

    /// <summary>Requests a quiet client may send at once; 0 means as many as <see cref="RequestsPerSecond"/>.</summary>
    [Range(0, 1_000_000)]
    public int Burst { get; set; }
}

internal static class RateLimiting
{
    public static IServiceCollection AddClientRateLimiter(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddRateLimiter(options =>
        {
            options.AddPolicy(RateLimitOptions.PolicyName, static context =>
            {
                var limits = context.RequestServices.GetRequiredService<IOptionsMonitor<RateLimitOptions>>().CurrentValue;
                if (limits.RequestsPerSecond <= 0)
                {
                    return RateLimitPartition.GetNoLimiter(default(Partition));
                }

                var burst = limits.Burst > 0 ? limits.Burst : limits.RequestsPerSecond;
                // The rates are part of the key, so that a configuration reload takes effect at once.
                return RateLimitPartition.GetTokenBucketLimiter(new Partition(ClientIdentityForwarding.ClientId(context), limits.RequestsPerSecond, burst), static p => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = p.Burst,
                    TokensPerPeriod = p.PerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            // Capacity: one concurrency limit over every proxied request, held until its response ends (a stream
            // holds its slot while it is open). The limit is the partition's key, so that a reload takes effect.
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, int>(static context =>
                !ClientFaults.IsProxied(context)
                    ? RateLimitPartition.GetNoLimiter(0)
                    : RateLimitPartition.GetConcurrencyLimiter(MaxStreams(context), static limit => new ConcurrencyLimiterOptions
                    {
                        PermitLimit = limit,
                        QueueLimit = 0,
                    }));
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = static (rejected, _) =>
            {
                var context = rejected.HttpContext;
                var logger = context.RequestServices.GetRequiredService<ILogger<RateLimitOptions>>();
                // The token bucket knows when a token comes back; the concurrency limit cannot know when a stream ends.
                var overloaded = !rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter);
                var seconds = overloaded ? 1 : Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                if (overloaded)
                {
                    var limit = MaxStreams(context);
                    Log.Overloaded(logger, limit, context.Request.Path);
                    return new ValueTask(GatewayErrors.WriteAsync(context, GatewayError.Overloaded));
                }

                var client = ClientIdentityForwarding.ClientId(context);
                Log.RateLimited(logger, client, context.Request.Path);
                return new ValueTask(GatewayErrors.WriteAsync(context, GatewayError.RateLimited));
            };
        });
        return services;
    }

    private static int MaxStreams(HttpContext context) =>
        context.RequestServices.GetRequiredService<IOptionsMonitor<CapacityOptions>>().CurrentValue.EffectiveMaxConcurrentStreams;

    private readonly record struct Partition(string Client, int PerSecond, int Burst);
}
