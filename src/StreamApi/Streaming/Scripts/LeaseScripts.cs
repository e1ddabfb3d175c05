using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.StreamApi.Streaming.Scripts;

/// <summary>The Lua of one client's attach lease on a stream (<see cref="AttachLeases"/>): taking, renewing and ending it.</summary>
internal static class LeaseScripts
{
    /// <summary>The reply of <see cref="Renew"/>.</summary>
    public enum RenewReply
    {
        StreamGone = 0,
        StreamExists = 1,
    }

    /// <summary>The reply of <see cref="Detach"/>.</summary>
    public enum DetachReply
    {
        /// <summary>A live lease is left, or the stream is gone (there is nothing to judge).</summary>
        OthersRemain = 0,

        /// <summary>No live lease is left: the disconnect grace begins.</summary>
        LastLeft = 1,
    }

    /// <summary>
    /// Defines <c>vix_attach(clients, member, lease_ms, ttl_ms)</c> besides <c>vix_now()</c>: takes (or extends) a
    /// lease, and gives the set a TTL only when it has none, so a finished stream keeps its shorter one.
    /// </summary>
    public const string Functions = CommonScripts.Now + """
        local function vix_attach(clients, member, lease, ttl)
          redis.call('ZADD', clients, vix_now() + tonumber(lease), member)
          redis.call('PEXPIRE', clients, ttl, 'NX')
        end

        """;

    // KEYS: clients. ARGV: lease member, lease ms, key TTL ms. No reply.
    public const string Attach = Functions + """
        vix_attach(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
        """;

    // KEYS: tokens stream, clients. ARGV: lease member ('' for none), lease ms. XX: a lease that was released or
    // expired with its key is not brought back.
    public static readonly string Renew = CommonScripts.Now + $$"""
        if ARGV[1] ~= '' then
          redis.call('ZADD', KEYS[2], 'XX', vix_now() + tonumber(ARGV[2]), ARGV[1])
        end
        if redis.call('EXISTS', KEYS[1]) == 0 then return {{(int)RenewReply.StreamGone}} end
        return {{(int)RenewReply.StreamExists}}
        """;

    // KEYS: tokens stream, clients, left. ARGV: lease member, TTL ms for a stream without one. Records when the last
    // live lease went, with the stream's own expiry.
    public static readonly string Detach = CommonScripts.Now + $$"""
        redis.call('ZREM', KEYS[2], ARGV[1])
        local now = vix_now()
        if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then return {{(int)DetachReply.OthersRemain}} end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl == -2 then return {{(int)DetachReply.OthersRemain}} end
        if ttl == -1 then ttl = tonumber(ARGV[2]) end
        redis.call('SET', KEYS[3], now, 'PX', ttl)
        return {{(int)DetachReply.LastLeft}}
        """;

    public static RedisKey[] AttachKeys(string id) => [RedisKeys.Clients(id)];

    public static RedisValue[] AttachArguments(string member, long leaseMilliseconds, long ttlMilliseconds) =>
        [member, leaseMilliseconds, ttlMilliseconds];

    public static RedisKey[] RenewKeys(string id) => [RedisKeys.Tokens(id), RedisKeys.Clients(id)];

    public static RedisValue[] RenewArguments(string? member, long leaseMilliseconds) =>
        [member ?? RedisValue.EmptyString, leaseMilliseconds];

    public static RedisKey[] DetachKeys(string id) => [RedisKeys.Tokens(id), RedisKeys.Clients(id), RedisKeys.Left(id)];

    public static RedisValue[] DetachArguments(string member, long ttlMilliseconds) => [member, ttlMilliseconds];
}
