using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Who is attached to a stream, and cancelling it: by DELETE at once, or when no client has been attached for
/// the disconnect grace. Each decision is one script on the request's <c>{id}</c> keys, so it is atomic across
/// API replicas and safe on Redis Cluster.
/// </summary>
internal sealed class StreamControl(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    public enum CancelOutcome
    {
        NotFound,
        Cancelled,
        AlreadyEnded,
        ClientReturned,
    }

    // KEYS: clients hash, tokens stream, cancelled flag. ARGV: expected epoch ('' for unconditional), flag TTL ms,
    // cancel channel, id. Returns 0 not found, 1 cancelled, 2 already ended, 3 a client is attached again.
    private const string CancelScript = """
        if ARGV[1] ~= '' then
          local attached = tonumber(redis.call('HGET', KEYS[1], 'attached') or '0')
          if attached > 0 or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 3 end
        end
        local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
        if #last == 0 then return 0 end
        local fields = last[1][2]
        for i = 1, #fields, 2 do
          if fields[i] == 'e' and fields[i + 1] == 'end' then return 2 end
        end
        redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
        redis.call('PUBLISH', ARGV[3], ARGV[4])
        return 1
        """;

    // KEYS: clients hash. ARGV: TTL ms, set only when the hash has none (a finished stream keeps its shorter one).
    private const string AttachScript = """
        redis.call('HINCRBY', KEYS[1], 'attached', 1)
        local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
        redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
        return epoch
        """;

    // KEYS: clients hash. Returns the epoch when the last client left, else -1. A hash that expired stays gone.
    private const string DetachScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
        local attached = redis.call('HINCRBY', KEYS[1], 'attached', -1)
        if attached > 0 then return -1 end
        if attached < 0 then redis.call('HSET', KEYS[1], 'attached', 0) end
        return tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
        """;

    // KEYS: the client's streams, a sorted set of stream ids scored by deadline (ms). ARGV: limit, lifetime ms,
    // stream id. Slots of streams past their deadline (a replica that died holding them) drop out by themselves,
    // and a refused attempt extends nothing. Returns 1 when a slot was taken, 0 at the limit.
    private const string AcquireScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """;

    private static readonly RedisValue CancelChannel = RedisKeys.Cancellations.ToString();

    public async Task<long> AttachAsync(string id)
    {
        var ttl = (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds;
        return (long)await redis.GetDatabase().ScriptEvaluateAsync(AttachScript, [RedisKeys.Clients(id)], [ttl]);
    }

    /// <summary>Returns the epoch to check after the grace when this was the last client, else null.</summary>
    public async Task<long?> DetachAsync(string id)
    {
        var epoch = (long)await redis.GetDatabase().ScriptEvaluateAsync(DetachScript, [RedisKeys.Clients(id)]);
        return epoch >= 0 ? epoch : null;
    }

    public Task<CancelOutcome> CancelAsync(string id, CancellationToken cancellationToken) =>
        RunCancelAsync(id, RedisValue.EmptyString, cancellationToken);

    /// <summary>Cancels only if no client attached since the last one left (same epoch) and the stream has not ended.</summary>
    public Task<CancelOutcome> CancelIfAbandonedAsync(string id, long epoch, CancellationToken cancellationToken) =>
        RunCancelAsync(id, epoch, cancellationToken);

    private async Task<CancelOutcome> RunCancelAsync(string id, RedisValue epoch, CancellationToken cancellationToken)
    {
        var ttl = (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds;
        var result = await redis.GetDatabase().ScriptEvaluateAsync(CancelScript,
            [RedisKeys.Clients(id), RedisKeys.Tokens(id), RedisKeys.Cancelled(id)],
            [epoch, ttl, CancelChannel, id]).WaitAsync(cancellationToken);
        return (CancelOutcome)(int)result;
    }

    /// <summary>Takes one of the client's concurrent-stream slots for stream <paramref name="id"/>; false when it has them all.</summary>
    public async Task<bool> TryAcquireClientSlotAsync(string client, string id, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        if (limits.MaxConcurrentStreamsPerClient == 0)
        {
            return true;
        }

        var lifetime = (long)(limits.MaxDuration + limits.FirstTokenTimeout + limits.DisconnectGrace).TotalMilliseconds;
        var taken = await redis.GetDatabase().ScriptEvaluateAsync(AcquireScript, [RedisKeys.ClientStreams(client)],
            [limits.MaxConcurrentStreamsPerClient, lifetime, id]).WaitAsync(cancellationToken);
        return (int)taken == 1;
    }

    public async Task ReleaseClientSlotAsync(string client, string id)
    {
        if (options.CurrentValue.MaxConcurrentStreamsPerClient > 0)
        {
            await redis.GetDatabase().SortedSetRemoveAsync(RedisKeys.ClientStreams(client), id);
        }
    }
}
