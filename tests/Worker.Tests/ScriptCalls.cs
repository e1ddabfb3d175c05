using System.Globalization;
using StackExchange.Redis;

namespace VixAspire.Worker.Tests;

/// <summary>Script calls a Redis server has run (<c>EVAL</c> and <c>EVALSHA</c>, from <c>INFO commandstats</c>).</summary>
internal static class ScriptCalls
{
    public static async Task<long> CountAsync(IConnectionMultiplexer redis)
    {
        var stats = await redis.GetServers()[0].InfoAsync("commandstats");
        long calls = 0;
        foreach (var pair in stats.SelectMany(g => g).Where(p => p.Key is "cmdstat_evalsha" or "cmdstat_eval"))
        {
            calls += long.Parse(pair.Value.Split(',')[0]["calls=".Length..], CultureInfo.InvariantCulture);
        }

        return calls;
    }
}
