using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.TestSupport;

/// <summary>Asks Redis what anyone judging a stream's clients would conclude, with the shared Lua of <see cref="AttachLeases"/>.</summary>
public static class AttachLeaseProbe
{
    private const string AbandonedScript = AttachLeaseScripts.Functions + "return vix_abandoned(KEYS[1], KEYS[2], ARGV[1]) and 1 or 0";

    private const string LiveScript = AttachLeaseScripts.Functions + "return redis.call('ZCOUNT', KEYS[1], '(' .. vix_now(), '+inf')";

    /// <summary>True when no client holds a live lease on stream <paramref name="id"/> and the last left at least <paramref name="grace"/> ago.</summary>
    public static async Task<bool> IsAbandonedAsync(IDatabase db, string id, TimeSpan grace) =>
        (int)await db.ScriptEvaluateAsync(AbandonedScript, [RedisKeys.Clients(id), RedisKeys.Left(id)], [(long)grace.TotalMilliseconds]) == 1;

    /// <summary>Leases on stream <paramref name="id"/> that have not run out by Redis's clock.</summary>
    public static async Task<int> LiveLeasesAsync(IDatabase db, string id) =>
        (int)await db.ScriptEvaluateAsync(LiveScript, [RedisKeys.Clients(id)]);
}
