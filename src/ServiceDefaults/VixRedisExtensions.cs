using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;

namespace Microsoft.Extensions.Hosting;

public static class VixRedisExtensions
{
    /// <summary>
    /// The one <see cref="StackExchange.Redis.IConnectionMultiplexer"/> of <c>ConnectionStrings:redis</c>, command
    /// spans only when <see cref="TelemetrySources.RedisCommandSpans"/> asks for them, and the <see cref="RedisTopology"/>
    /// of the <c>Redis</c> section, which the API and the worker must read alike.
    /// </summary>
    public static TBuilder AddVixRedis<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddRedisClient(RedisConnection.Name, settings => settings.DisableTracing |= !TelemetrySources.RedisCommandSpans(builder.Configuration));
        builder.Services.AddOptions<RedisTopologyOptions>()
            .BindConfiguration(RedisTopologyOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => new RedisTopology(
            sp.GetRequiredService<IOptions<RedisTopologyOptions>>().Value, builder.Configuration.GetConnectionString(RedisConnection.Name)));
        return builder;
    }
}
