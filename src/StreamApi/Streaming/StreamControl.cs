using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Who follows a stream, and cancelling it: by DELETE at once, or when its clients have been gone for the disconnect
/// grace. Attachments are leases (see <see cref="AttachLeases"/>), so a replica that dies leaves nothing that keeps
/// a stream alive. Each decision is one script on the request's <c>{id}</c> keys, so it is atomic across API
/// replicas and safe on Redis Cluster.
/// </summary>
internal sealed class StreamControl(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    public enum CancelOutcome
    {
        NotFound,
        Cancelled,
        AlreadyEnded,
        ClientReturned,

        /// <summary>No client holds a lease, but the grace is not over by Redis's clock (or nothing says when it began).</summary>
        NotYet,
    }

    // KEYS: tokens stream, cancelled flag, clients, left, owner. ARGV: grace ms ('' for unconditional), flag TTL ms,
    // cancel channel, id, API key ('' for any). Returns 0 not found (or owned by another key), 1 cancelled, 2 already
    // ended, 3 a client holds a lease, 4 not abandoned yet.
    private const string CancelScript = AttachLeaseScripts.Functions + """
        if ARGV[5] ~= '' and redis.call('GET', KEYS[5]) ~= ARGV[5] then return 0 end
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #last == 0 then return 0 end
        local fields = last[1][2]
        for i = 1, #fields, 2 do
          if fields[i] == 'e' and fields[i + 1] == 'end' then return 2 end
        end
        if ARGV[1] ~= '' then
          if redis.call('ZCOUNT', KEYS[3], '(' .. vix_now(), '+inf') > 0 then return 3 end
          if not vix_abandoned(KEYS[3], KEYS[4], ARGV[1]) then return 4 end
        end
        redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
        redis.call('PUBLISH', ARGV[3], ARGV[4])
        return 1
        """;

    /// <summary>
    /// Lua that defines <c>vix_attach(clients, member, lease_ms, ttl_ms)</c> besides <see cref="AttachLeaseScripts.Functions"/>:
    /// takes (or extends) a lease, and gives the set a TTL only when it has none, so a finished stream keeps its shorter one.
    /// </summary>
    internal const string AttachFunctions = AttachLeaseScripts.Functions + """
        local function vix_attach(clients, member, lease, ttl)
          redis.call('ZADD', clients, vix_now() + tonumber(lease), member)
          redis.call('PEXPIRE', clients, ttl, 'NX')
        end

        """;

    // KEYS: clients. ARGV: lease member, lease ms, key TTL ms.
    private const string AttachScript = AttachFunctions + """
        vix_attach(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
        return 1
        """;

    // KEYS: tokens stream, clients. ARGV: lease member ('' for none), lease ms. XX: a lease that was released or
    // expired with its key is not brought back. Returns whether the token stream exists.
    private const string RenewScript = AttachLeaseScripts.Functions + """
        if ARGV[1] ~= '' then
          redis.call('ZADD', KEYS[2], 'XX', vix_now() + tonumber(ARGV[2]), ARGV[1])
        end
        return redis.call('EXISTS', KEYS[1])
        """;

    // KEYS: tokens stream, clients, left. ARGV: lease member, TTL ms for a stream without one. Records when the last
    // live lease went, with the stream's own expiry. Returns 1 when no live lease is left, else 0 (also when the
    // stream is gone: there is nothing to judge).
    private const string DetachScript = AttachLeaseScripts.Functions + """
        redis.call('ZREM', KEYS[2], ARGV[1])
        local now = vix_now()
        if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then return 0 end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl == -2 then return 0 end
        if ttl == -1 then ttl = tonumber(ARGV[2]) end
        redis.call('SET', KEYS[3], now, 'PX', ttl)
        return 1
        """;

    // KEYS: the client's streams, a sorted set of stream ids and attachments scored by deadline (ms). ARGV: limit,
    // lifetime ms, member. Slots of streams past their deadline (a replica that died holding them) drop out by themselves,
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

    /// <summary>This replica's part of every lease member, so members of different replicas never collide.</summary>
    /// <remarks>Also the name of the replica's wake-up channel (<see cref="WakeDispatcher"/>), which writers find in the leases.</remarks>
    internal static readonly string Replica = Guid.NewGuid().ToString("N")[..12];

    private long _attachments;

    /// <summary>A new lease on stream <paramref name="id"/>, held once <see cref="AttachAsync"/> took it.</summary>
    public AttachLease NewLease(string id) => new(id, $"{Replica}:{Interlocked.Increment(ref _attachments)}");

    /// <summary>Takes (or, again, extends) <paramref name="lease"/>, which <see cref="RenewAsync"/> keeps and <see cref="DetachAsync"/> ends.</summary>
    public async Task AttachAsync(AttachLease lease, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        await redis.GetDatabase().ScriptEvaluateAsync(AttachScript, [RedisKeys.Clients(lease.StreamId)],
            [lease.Member, LeaseMilliseconds(limits), (long)limits.InitialStreamTtl.TotalMilliseconds]).WaitAsync(cancellationToken);
    }

    /// <summary>Renews <paramref name="lease"/> (when there is one) and tells whether stream <paramref name="id"/> still exists, in one command.</summary>
    public async Task<bool> RenewAsync(string id, AttachLease? lease, CancellationToken cancellationToken)
    {
        var exists = await redis.GetDatabase().ScriptEvaluateAsync(RenewScript, [RedisKeys.Tokens(id), RedisKeys.Clients(id)],
            [lease?.Member ?? RedisValue.EmptyString, LeaseMilliseconds(options.CurrentValue)]).WaitAsync(cancellationToken);
        return (int)exists == 1;
    }

    /// <summary>Ends <paramref name="lease"/>; true when no client of the stream holds a live lease any more, so the grace begins.</summary>
    public async Task<bool> DetachAsync(AttachLease lease, CancellationToken cancellationToken)
    {
        var id = lease.StreamId;
        var last = await redis.GetDatabase().ScriptEvaluateAsync(DetachScript, [RedisKeys.Tokens(id), RedisKeys.Clients(id), RedisKeys.Left(id)],
            [lease.Member, (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds]).WaitAsync(cancellationToken);
        return (int)last == 1;
    }

    /// <summary>Cancels stream <paramref name="id"/>; with <paramref name="key"/>, only a stream that key created (another's is not found).</summary>
    public Task<CancelOutcome> CancelAsync(string id, string? key, CancellationToken cancellationToken) =>
        RunCancelAsync(id, RedisValue.EmptyString, key, cancellationToken);

    /// <summary>Cancels only if the stream is abandoned (no live lease, the last gone for the grace) and has not ended.</summary>
    public Task<CancelOutcome> CancelIfAbandonedAsync(string id, CancellationToken cancellationToken) =>
        RunCancelAsync(id, (long)options.CurrentValue.DisconnectGrace.TotalMilliseconds, key: null, cancellationToken);

    private async Task<CancelOutcome> RunCancelAsync(string id, RedisValue graceMilliseconds, string? key, CancellationToken cancellationToken)
    {
        var ttl = (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds;
        var result = await redis.GetDatabase().ScriptEvaluateAsync(CancelScript,
            [RedisKeys.Tokens(id), RedisKeys.Cancelled(id), RedisKeys.Clients(id), RedisKeys.Left(id), RedisKeys.Owner(id)],
            [graceMilliseconds, ttl, CancelChannel, id, key ?? RedisValue.EmptyString]).WaitAsync(cancellationToken);
        return (CancelOutcome)(int)result;
    }

    internal static long LeaseMilliseconds(StreamingOptions limits) => (long)AttachLeases.Duration(limits).TotalMilliseconds;

    /// <summary>Takes one of the client's concurrent-stream slots as <paramref name="member"/> (a stream id or an attachment); false when it has them all.</summary>
    public async Task<bool> TryAcquireClientSlotAsync(string client, string member, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        if (limits.MaxConcurrentStreamsPerClient == 0)
        {
            return true;
        }

        var lifetime = (long)(limits.MaxDuration + limits.FirstTokenTimeout + limits.DisconnectGrace).TotalMilliseconds;
        var taken = await redis.GetDatabase().ScriptEvaluateAsync(AcquireScript, [RedisKeys.ClientStreams(client)],
            [limits.MaxConcurrentStreamsPerClient, lifetime, member]).WaitAsync(cancellationToken);
        return (int)taken == 1;
    }

    public async Task ReleaseClientSlotAsync(string client, RedisValue[] members)
    {
        if (options.CurrentValue.MaxConcurrentStreamsPerClient > 0)
        {
            await redis.GetDatabase().SortedSetRemoveAsync(RedisKeys.ClientStreams(client), members);
        }
    }
}

/// <summary>One client's attachment to one stream: the member of <see cref="RedisKeys.Clients"/> its replica renews.</summary>
internal sealed record AttachLease(string StreamId, string Member);
