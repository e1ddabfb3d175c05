using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.StreamApi.Streaming.Scripts;

/// <summary>The Lua of a client's concurrent-stream slots (<see cref="RedisKeys.ClientStreams"/>).</summary>
internal static class ClientSlotScripts
{
    public enum AcquireReply
    {
        AtLimit = 0,
        Taken = 1,
    }

    // KEYS: the client's streams, a sorted set of stream ids and attachments scored by deadline (ms). ARGV: limit,
    // lifetime ms, member. Slots of streams past their deadline (a replica that died holding them) drop out by themselves,
    // and a refused attempt extends nothing.
    public static readonly string Acquire = CommonScripts.Now + $$"""
        local now = vix_now()
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return {{(int)AcquireReply.AtLimit}} end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return {{(int)AcquireReply.Taken}}
        """;

    public static RedisKey[] AcquireKeys(string client) => [RedisKeys.ClientStreams(client)];

    public static RedisValue[] AcquireArguments(int limit, long lifetimeMilliseconds, string member) => [limit, lifetimeMilliseconds, member];
}
