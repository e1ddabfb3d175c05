using System.Threading.Channels;
using Polly;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// Appends entries to one request's token stream, as the one generation allowed to write it. Entries queue in
/// memory while a write is in flight and go out together: one script call per batch appends them all
/// (<c>XADD ... NOMKSTREAM MAXLEN ~</c>), sets the expiry with the last one, and publishes one wake-up. At a
/// model's pace each token is its own batch; when tokens arrive faster than a round trip, batches grow and round
/// trips do not.
/// </summary>
/// <remarks>
/// Fencing: <see cref="TakeAsync"/> makes this generation the stream's writer (<see cref="RedisKeys.Writer"/>),
/// and every batch is refused once another generation took the stream over or the stream ended. Batches are
/// numbered, so a batch retried after a dropped connection, which Redis may already have applied, is applied once.
/// </remarks>
internal sealed class TokenStreamWriter : IAsyncDisposable
{
    // KEYS: token stream, writer hash, clients, cancelled flag, left, owner. ARGV[1] the new writer, ARGV[2] TTL in ms.
    // Returns {state, last event, cancelled}: state 0 when the stream is gone, 2 when it has ended, else 1. The TTL is
    // renewed from now, so a request that waited long in the queue keeps its stream for its whole run.
    private const string TakeScript = """
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #last == 0 then return {0, '', 0} end
        local event = ''
        local fields = last[1][2]
        for i = 1, #fields, 2 do
          if fields[i] == 'e' then event = fields[i + 1] end
        end
        if event == 'end' then return {2, event, 0} end
        redis.call('HSET', KEYS[2], 'o', ARGV[1], 's', 0)
        for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
        return {1, event, redis.call('EXISTS', KEYS[4])}
        """;

    // KEYS: token stream, writer hash, clients, cancelled flag, left, owner. ARGV[1] MAXLEN, ARGV[2] expiry in ms (0: leave
    // as is; set with the end entry on every key of the request), ARGV[3] wake channel, ARGV[4] this writer,
    // ARGV[5] batch number, ARGV[6] disconnect grace in ms, then event/data pairs. Returns 0 when the stream is
    // gone, 3 when another writer owns it or it ended, 4 when batches this writer had applied are missing (a replica
    // promoted by a failover had not received them yet), 2 when the request is cancelled (by a cancel the pub/sub
    // message missed, or because no client has followed it for the grace), else 1. The end hands the stream to
    // '~' .. writer, which refuses everyone, yet still tells that writer its retried end was applied. The wake-up is
    // an SPUBLISH on a channel with the stream's hash tag, so it never leaves the stream's cluster slot.
    private const string AppendScript = AttachLeases.Functions + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local owner = redis.call('HGET', KEYS[2], 'o')
        local applied = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
        local batch = tonumber(ARGV[5])
        if owner == '~' .. ARGV[4] and batch <= applied then return 1 end
        if owner ~= ARGV[4] then return 3 end
        if batch > applied + 1 then return 4 end
        if batch > applied then
          for i = 7, #ARGV, 2 do
            redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i], 'd', ARGV[i + 1])
          end
          redis.call('HSET', KEYS[2], 's', batch)
          if ARGV[2] ~= '0' then
            redis.call('HSET', KEYS[2], 'o', '~' .. ARGV[4])
            for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
          end
          redis.call('SPUBLISH', ARGV[3], '')
        end
        if redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
        if ARGV[2] == '0' and vix_abandoned(KEYS[3], KEYS[5], ARGV[6]) then
          redis.call('SET', KEYS[4], '1', 'PX', math.max(1, redis.call('PTTL', KEYS[1])))
          return 2
        end
        return 1
        """;

    private const int MaxEntriesPerBatch = 512;
    private const int FixedArguments = 6;

    private static readonly RedisValue TokenEvent = EventNames.Token;
    private static readonly RedisValue ErrorEvent = EventNames.Error;
    private static readonly RedisValue EndEvent = EventNames.End;

    private readonly IDatabase _db;
    private readonly ResiliencePipeline _retry;
    private readonly RedisKey[] _keys;
    private readonly RedisValue _maxLength;
    private readonly RedisValue _channel;
    private readonly RedisValue _owner;
    private readonly long _graceMilliseconds;
    private readonly long _finalTtlMilliseconds;
    private readonly Channel<Pending> _pending = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(4 * MaxEntriesPerBatch) { SingleReader = true, SingleWriter = true });
    private readonly Task _flushing;
    private readonly CancellationTokenSource _cancelledByFlag = new();
    private long _batch;

    private TokenStreamWriter(IDatabase db, ResiliencePipeline retry, string id, string owner, StreamingOptions limits)
    {
        _db = db;
        _retry = retry;
        _keys = KeysOf(id);
        _maxLength = limits.MaxStreamEntries;
        _channel = RedisKeys.Wake(id).ToString();
        _owner = owner;
        _graceMilliseconds = (long)limits.DisconnectGrace.TotalMilliseconds;
        _finalTtlMilliseconds = (long)limits.ResumeWindow.TotalMilliseconds;
        _flushing = FlushLoopAsync();
    }

    /// <summary>What a generation found when it took its stream.</summary>
    /// <param name="Writer">The writer, or null when the stream is gone or already ended.</param>
    /// <param name="LastEvent">The stream's last event: <c>start</c> when no generation has written to it yet.</param>
    /// <param name="Cancelled">The request was cancelled before this generation took it.</param>
    public readonly record struct Taken(TokenStreamWriter? Writer, bool Ended, string LastEvent, bool Cancelled);

    /// <summary>
    /// Makes a new generation the stream's only writer, fencing off any earlier one (a worker presumed dead that is
    /// in fact alive), and renews the stream's expiry from now.
    /// </summary>
    public static async Task<Taken> TakeAsync(IDatabase db, ResiliencePipeline retry, string id, StreamingOptions limits)
    {
        var owner = Guid.NewGuid().ToString("N");
        var ttl = (long)limits.InitialStreamTtl.TotalMilliseconds;
        var keys = KeysOf(id);
        var result = (RedisResult[])(await retry.ExecuteAsync(
            async _ => await db.ScriptEvaluateAsync(TakeScript, keys, [owner, ttl]), CancellationToken.None))!;
        var state = (int)result[0];
        return state == 1
            ? new Taken(new TokenStreamWriter(db, retry, id, owner, limits), false, result[1].ToString(), (int)result[2] == 1)
            : new Taken(null, state == 2, result[1].ToString(), false);
    }

    /// <summary>True once another generation took the stream over: this one must neither write nor settle its entry.</summary>
    public bool Fenced { get; private set; }

    public bool IsOpen => !_flushing.IsCompleted;

    /// <summary>Cancelled when a write finds the request marked cancelled in Redis.</summary>
    public CancellationToken CancelledInRedis => _cancelledByFlag.Token;

    public ValueTask AppendTokenAsync(string text, int index, CancellationToken cancellationToken) =>
        EnqueueAsync(new Pending(TokenEvent, Envelopes.Token(text, index)), cancellationToken);

    public ValueTask AppendErrorAsync(string code, string message, bool retryable) =>
        EnqueueAsync(new Pending(ErrorEvent, Envelopes.Error(code, message, retryable)), CancellationToken.None);

    /// <summary>Appends the <c>end</c> entry, waits until everything is in Redis, and shortens the expiry to the resume window.</summary>
    public async Task CompleteAsync(string reason, int outputTokens)
    {
        await EnqueueAsync(new Pending(EndEvent, Envelopes.End(reason, outputTokens)), CancellationToken.None);
        _pending.Writer.TryComplete();
        await _flushing;
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        try
        {
            await _flushing;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Already reported to whoever awaited CompleteAsync; disposal must not throw.
        }
        finally
        {
            _cancelledByFlag.Dispose();
        }
    }

    private ValueTask EnqueueAsync(Pending entry, CancellationToken cancellationToken) =>
        _pending.Writer.TryWrite(entry) ? ValueTask.CompletedTask : EnqueueSlowAsync(entry, cancellationToken);

    private async ValueTask EnqueueSlowAsync(Pending entry, CancellationToken cancellationToken)
    {
        try
        {
            await _pending.Writer.WriteAsync(entry, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            // The stream is gone or Redis failed; IsOpen tells the generation, CompleteAsync rethrows the cause.
        }
    }

    private async Task FlushLoopAsync()
    {
        await Task.Yield();
        try
        {
            await FlushBatchesAsync();
        }
        catch (Exception ex)
        {
            _pending.Writer.TryComplete(ex);
            throw;
        }
    }

    private async Task FlushBatchesAsync()
    {
        var reader = _pending.Reader;
        var args = new List<RedisValue>(FixedArguments + 2 * MaxEntriesPerBatch);
        while (await reader.WaitToReadAsync())
        {
            args.Clear();
            args.Add(_maxLength);
            args.Add(0);
            args.Add(_channel);
            args.Add(_owner);
            args.Add(++_batch);
            args.Add(_graceMilliseconds);
            while (args.Count < FixedArguments + 2 * MaxEntriesPerBatch && reader.TryRead(out var entry))
            {
                args.Add(entry.Event);
                args.Add(entry.Data);
                if (entry.Event == EndEvent)
                {
                    args[1] = _finalTtlMilliseconds;
                }
            }

            RedisValue[] values = [.. args];
            var result = (int)await _retry.ExecuteAsync(
                async _ => await _db.ScriptEvaluateAsync(AppendScript, _keys, values), CancellationToken.None);
            if (result is 0 or 3 or 4)
            {
                // Gone, or written by another generation now: stop accepting, so the generation sees IsOpen == false.
                // Entries lost with a failover count as fenced: the stream has a gap this writer cannot fill, so the
                // entry stays pending and whoever claims it ends the stream with worker_lost.
                Fenced = result is 3 or 4;
                _pending.Writer.TryComplete();
                return;
            }

            if (result == 2 && !_cancelledByFlag.IsCancellationRequested)
            {
                await _cancelledByFlag.CancelAsync();
            }
        }
    }

    private static RedisKey[] KeysOf(string id) =>
        [RedisKeys.Tokens(id), RedisKeys.Writer(id), RedisKeys.Clients(id), RedisKeys.Cancelled(id), RedisKeys.Left(id), RedisKeys.Owner(id)];

    private readonly record struct Pending(RedisValue Event, byte[] Data);
}
