using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.StreamApi.Streaming.Scripts;

/// <summary>The Lua that cancels a stream: by DELETE at once, or when its clients have been gone for the disconnect grace.</summary>
internal static class CancelScripts
{
    public enum Reply
    {
        /// <summary>No such stream, or one another API key created.</summary>
        NotFound = 0,
        Cancelled = 1,
        AlreadyEnded = 2,
        ClientReturned = 3,

        /// <summary>No client holds a lease, but the grace is not over by Redis's clock (or nothing says when it began).</summary>
        NotYet = 4,
    }

    // KEYS: tokens stream, cancelled flag, clients, left, owner. ARGV: grace ms ('' for unconditional), flag TTL ms,
    // cancel channel, id, API key ('' for any).
    public static readonly string Cancel = AttachLeaseScripts.Functions + CommonScripts.LastEvent + $$"""
        if ARGV[5] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[5] then return {{(int)Reply.NotFound}} end
        local last = vix_last_event(KEYS[1])
        if not last then return {{(int)Reply.NotFound}} end
        if last == '{{EventNames.End}}' then return {{(int)Reply.AlreadyEnded}} end
        if ARGV[1] ~= '' then
          if redis.call('ZCOUNT', KEYS[3], '(' .. vix_now(), '+inf') > 0 then return {{(int)Reply.ClientReturned}} end
          if not vix_abandoned(KEYS[3], KEYS[4], ARGV[1]) then return {{(int)Reply.NotYet}} end
        end
        redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
        redis.call('PUBLISH', ARGV[3], ARGV[4])
        return {{(int)Reply.Cancelled}}
        """;

    private static readonly RedisValue CancelChannel = RedisKeys.Cancellations.ToString();

    public static RedisKey[] Keys(string id) =>
        [RedisKeys.Tokens(id), RedisKeys.Cancelled(id), RedisKeys.Clients(id), RedisKeys.Left(id), RedisKeys.Owner(id)];

    public static RedisValue[] Arguments(string id, RedisValue graceMilliseconds, long flagTtlMilliseconds, string? key) =>
        [graceMilliseconds, flagTtlMilliseconds, CancelChannel, id, key ?? RedisValue.EmptyString];
}
