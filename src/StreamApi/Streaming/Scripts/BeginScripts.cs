using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming.Scripts;

/// <summary>The Lua that begins a request's stream (and queues the request, on one server), and the check that a stream exists for a key.</summary>
internal static class BeginScripts
{
    public enum BeginReply
    {
        /// <summary>The queue partition is at its cap: nothing was written.</summary>
        QueueFull = 0,
        Begun = 1,
    }

    public enum ExistsReply
    {
        /// <summary>No such stream, or one another API key created.</summary>
        Unknown = 0,
        Exists = 1,
    }

    /// <summary>How many ARGV come before the queue entry's fields and values.</summary>
    private const int HeaderLength = 6;

    /// <summary>With the queue partition as its last key, the script queues the request too.</summary>
    private const int KeysWithQueue = 4;

    // KEYS: tokens stream, owner, clients, then the queue partition when this script queues the request too (one
    // server). ARGV: start envelope, TTL ms, API key ('' for none), lease member, lease ms, partition cap, then the queue
    // entry's fields and values.
    public static readonly string Begin = LeaseScripts.Functions + $$"""
        local queued = #KEYS == {{KeysWithQueue}}
        if queued and redis.call('XLEN', KEYS[{{KeysWithQueue}}]) >= tonumber(ARGV[6]) then return {{(int)BeginReply.QueueFull}} end
        redis.call('XADD', KEYS[1], '*', '{{StreamFields.Event}}', '{{EventNames.Start}}', '{{StreamFields.Data}}', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
        vix_attach(KEYS[3], ARGV[4], ARGV[5], ARGV[2])
        if queued then redis.call('XADD', KEYS[{{KeysWithQueue}}], '*', unpack(ARGV, {{HeaderLength + 1}})) end
        return {{(int)BeginReply.Begun}}
        """;

    // KEYS: tokens stream, owner. ARGV: API key ('' for any).
    public static readonly string Exists = $$"""
        if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return {{(int)ExistsReply.Unknown}} end
        if redis.call('EXISTS', KEYS[1]) == 0 then return {{(int)ExistsReply.Unknown}} end
        return {{(int)ExistsReply.Exists}}
        """;

    /// <summary>KEYS of <see cref="Begin"/>; with <paramref name="queue"/>, the script queues the request too.</summary>
    public static RedisKey[] BeginKeys(string id, RedisKey? queue) => queue is { } partition
        ? [RedisKeys.Tokens(id), RedisKeys.Owner(id), RedisKeys.Clients(id), partition]
        : [RedisKeys.Tokens(id), RedisKeys.Owner(id), RedisKeys.Clients(id)];

    /// <summary>
    /// ARGV of <see cref="Begin"/>: the <see cref="HeaderLength"/> values its comment names, then <paramref name="queueFields"/>
    /// (none when the request is queued apart).
    /// </summary>
    public static RedisValue[] BeginArguments(byte[] start, long ttlMilliseconds, string? owner, string leaseMember, long leaseMilliseconds,
        long partitionCap, IReadOnlyCollection<RedisValue> queueFields) =>
        [start, ttlMilliseconds, owner ?? RedisValue.EmptyString, leaseMember, leaseMilliseconds, partitionCap, .. queueFields];

    public static RedisKey[] ExistsKeys(string id) => [RedisKeys.Tokens(id), RedisKeys.Owner(id)];

    public static RedisValue[] ExistsArguments(string? key) => [key ?? RedisValue.EmptyString];
}
