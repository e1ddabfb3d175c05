using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.Worker.Generation;

/// <summary>Fields of a stream's writer hash (<see cref="RedisKeys.Writer"/>), the fence of its one writer.</summary>
internal static class WriterFields
{
    /// <summary>The generation allowed to append; <see cref="EndedPrefix"/> and its own value once it wrote the end.</summary>
    public const string Owner = "o";

    /// <summary>The number of the last batch the writer applied, so that a retried batch is applied once.</summary>
    public const string Batch = "s";

    /// <summary>Put before the owner by the end: that value refuses everyone, yet tells the writer its retried end was applied.</summary>
    public const string EndedPrefix = "~";
}

/// <summary>What the take script found (the first value of its reply).</summary>
internal enum TakeState
{
    /// <summary>The token stream is gone: expired while the request waited, or lost with Redis's data.</summary>
    Gone = 0,

    /// <summary>The generation is the stream's writer now.</summary>
    Taken = 1,

    /// <summary>The stream has its end already.</summary>
    Ended = 2,
}

/// <summary>What the append script did with one stream's batch (one value of its reply per stream).</summary>
internal enum AppendState
{
    /// <summary>The token stream is gone.</summary>
    Gone = 0,

    /// <summary>Written (or written before, by a retried call).</summary>
    Applied = 1,

    /// <summary>Written, and the request is cancelled: by a cancel the pub/sub message missed, or because no client followed it for the grace.</summary>
    Cancelled = 2,

    /// <summary>Refused: another writer owns the stream, or it ended.</summary>
    Fenced = 3,

    /// <summary>Refused: batches this writer had applied are missing (a replica promoted by a failover had not received them yet).</summary>
    Lost = 4,
}

/// <summary>
/// The token-stream scripts: taking a stream (<see cref="Take"/>) and the group commit's append (<see cref="Append"/>),
/// with the key layout and argument header they share with <see cref="TokenStreamWriter"/> and <see cref="StreamFlusher"/>.
/// </summary>
internal static class TokenStreamScripts
{
    // Offsets of one stream's keys from its first, in KeysOf order.
    public const int TokensKey = 0;
    public const int WriterKey = 1;
    public const int ClientsKey = 2;
    public const int CancelledKey = 3;
    public const int LeftKey = 4;
    public const int OwnerKey = 5;

    /// <summary>Keys of one stream, in a take and in every stream's part of an append.</summary>
    public const int KeysPerStream = 6;

    // Offsets of one stream's append header from its first argument.
    /// <summary>The token stream's <c>MAXLEN ~</c>.</summary>
    public const int MaxLengthArgument = 0;

    /// <summary>Expiry in ms set with the end entry on every key of the request; <see cref="KeepExpiry"/> leaves it as is.</summary>
    public const int ExpiryArgument = 1;

    /// <summary>The request id, named in the wake-ups.</summary>
    public const int StreamIdArgument = 2;

    /// <summary>The writer (<see cref="WriterFields.Owner"/>) the batch comes from.</summary>
    public const int WriterArgument = 3;

    /// <summary>The batch number, one more than the writer's last applied batch.</summary>
    public const int BatchArgument = 4;

    /// <summary>The disconnect grace in ms, for the abandonment check.</summary>
    public const int GraceArgument = 5;

    /// <summary>The entries that follow the header, as event/data pairs.</summary>
    public const int EntryCountArgument = 6;

    /// <summary>Arguments of one stream before its entries.</summary>
    public const int HeaderArguments = 7;

    /// <summary>The <see cref="ExpiryArgument"/> of a batch without the end.</summary>
    public const int KeepExpiry = 0;

    /// <summary>The keys of stream <paramref name="id"/>, at the offsets above.</summary>
    public static RedisKey[] KeysOf(string id) =>
        [RedisKeys.Tokens(id), RedisKeys.Writer(id), RedisKeys.Clients(id), RedisKeys.Cancelled(id), RedisKeys.Left(id), RedisKeys.Owner(id)];

    // KEYS: one stream's keys. ARGV[1] the new writer, ARGV[2] TTL in ms. Returns {TakeState, last event, cancelled (0 or 1)}.
    // The TTL is renewed from now, so a request that waited long in the queue keeps its stream for its whole run.
    public static readonly string Take = CommonScripts.LastEvent + $$"""
        local event = vix_last_event(KEYS[{{1 + TokensKey}}])
        if not event then return {{{(int)TakeState.Gone}}, '', 0} end
        if event == '{{EventNames.End}}' then return {{{(int)TakeState.Ended}}, event, 0} end
        redis.call('HSET', KEYS[{{1 + WriterKey}}], '{{WriterFields.Owner}}', ARGV[1], '{{WriterFields.Batch}}', 0)
        for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
        return {{{(int)TakeState.Taken}}, event, redis.call('EXISTS', KEYS[{{1 + CancelledKey}}])}
        """;

    // Per stream: KEYS its KeysPerStream keys; ARGV its HeaderArguments header, then event/data pairs. Returns one
    // AppendState per stream. The end hands the stream to EndedPrefix .. writer. Wake-ups go out once per call, one
    // message per API replica that follows any of its streams (WakeUps).
    public static readonly string Append = AttachLeaseScripts.Functions + WakeUpScripts.Functions + $$"""
        local wakes = {}
        local function vix_append(k, a, first, last)
          if redis.call('EXISTS', KEYS[k + {{TokensKey}}]) == 0 then return {{(int)AppendState.Gone}} end
          local owner = redis.call('HGET', KEYS[k + {{WriterKey}}], '{{WriterFields.Owner}}')
          local applied = tonumber(redis.call('HGET', KEYS[k + {{WriterKey}}], '{{WriterFields.Batch}}') or '0')
          local writer = ARGV[a + {{WriterArgument}}]
          local batch = tonumber(ARGV[a + {{BatchArgument}}])
          local expiry = ARGV[a + {{ExpiryArgument}}]
          if owner == '{{WriterFields.EndedPrefix}}' .. writer and batch <= applied then return {{(int)AppendState.Applied}} end
          if owner ~= writer then return {{(int)AppendState.Fenced}} end
          if batch > applied + 1 then return {{(int)AppendState.Lost}} end
          if batch > applied then
            for i = first, last, 2 do
              redis.call('XADD', KEYS[k + {{TokensKey}}], 'MAXLEN', '~', ARGV[a + {{MaxLengthArgument}}], '*',
                '{{StreamFields.Event}}', ARGV[i], '{{StreamFields.Data}}', ARGV[i + 1])
            end
            redis.call('HSET', KEYS[k + {{WriterKey}}], '{{WriterFields.Batch}}', batch)
            if expiry ~= '{{KeepExpiry}}' then
              redis.call('HSET', KEYS[k + {{WriterKey}}], '{{WriterFields.Owner}}', '{{WriterFields.EndedPrefix}}' .. writer)
              for j = k, k + {{KeysPerStream - 1}} do redis.call('PEXPIRE', KEYS[j], expiry) end
            end
            vix_wake_add(wakes, KEYS[k + {{ClientsKey}}], ARGV[a + {{StreamIdArgument}}])
          end
          if redis.call('EXISTS', KEYS[k + {{CancelledKey}}]) == 1 then return {{(int)AppendState.Cancelled}} end
          if expiry == '{{KeepExpiry}}' and vix_abandoned(KEYS[k + {{ClientsKey}}], KEYS[k + {{LeftKey}}], ARGV[a + {{GraceArgument}}]) then
            redis.call('SET', KEYS[k + {{CancelledKey}}], '1', 'PX', math.max(1, redis.call('PTTL', KEYS[k + {{TokensKey}}])))
            return {{(int)AppendState.Cancelled}}
          end
          return {{(int)AppendState.Applied}}
        end
        local states = {}
        local a = 1
        for k = 1, #KEYS, {{KeysPerStream}} do
          local first = a + {{HeaderArguments}}
          local last = first + 2 * tonumber(ARGV[a + {{EntryCountArgument}}]) - 1
          states[#states + 1] = vix_append(k, a, first, last)
          a = last + 1
        end
        vix_wake_send(wakes)
        return states
        """;
}
