using System.Diagnostics;
using System.Threading.Channels;
using Polly;
using StackExchange.Redis;
using VixAspire.Contracts.Scripts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// The worker's one group commit for token streams. Writers that have entries waiting hand themselves in; each
/// flush takes the next batch of every waiting writer and sends them all as one script call (several, pipelined,
/// past <see cref="MaxStreamsPerCall"/> streams or <see cref="MaxBytesPerCall"/> bytes, and one per hash slot
/// in Redis Cluster, where a script may only touch one slot's keys). The next flush starts as soon as the previous
/// one returned, so an idle worker sends a lone token at once, and a busy one sends as many streams per round
/// trip as arrived during the last.
/// </summary>
/// <remarks>
/// Each writer has at most one batch in flight, so a stream's entries keep their order. Fencing and idempotence
/// stay per stream: every stream in a call carries its own writer and batch number, checked on its own, so a
/// call retried after a dropped connection appends nothing twice, and one fenced stream does not stop the others.
/// </remarks>
internal sealed class StreamFlusher : IAsyncDisposable
{
    /// <summary>Streams in one script call: bounds the script's run time, during which Redis serves nobody else.</summary>
    public const int MaxStreamsPerCall = 256;

    /// <summary>Entry bytes in one script call (one stream's batch may exceed it alone).</summary>
    public const int MaxBytesPerCall = 64 * 1024;

    /// <summary>Keys of one stream in a call, in <see cref="TokenStreamWriter.KeysOf"/> order.</summary>
    public const int KeysPerStream = 6;

    // Per stream: KEYS token stream, writer hash, clients, cancelled flag, left, owner; ARGV MAXLEN, expiry in ms (0:
    // leave as is; set with the end entry on every key of the request), stream id, writer, batch number,
    // disconnect grace in ms, entry count, then event/data pairs. Returns one state per stream: 0 when the stream is
    // gone, 3 when another writer owns it or it ended, 4 when batches this writer had applied are missing (a replica
    // promoted by a failover had not received them yet), 2 when the request is cancelled (by a cancel the pub/sub
    // message missed, or because no client has followed it for the grace), else 1. The end hands the stream to
    // '~' .. writer, which refuses everyone, yet still tells that writer its retried end was applied. Wake-ups go out
    // once per call, one message per API replica that follows any of its streams (WakeUps).
    private const string AppendScript = AttachLeaseScripts.Functions + WakeUpScripts.Functions + """
        local wakes = {}
        local function vix_append(k, a, first, last)
          if redis.call('EXISTS', KEYS[k + 1]) == 0 then return 0 end
          local owner = redis.call('HGET', KEYS[k + 2], 'o')
          local applied = tonumber(redis.call('HGET', KEYS[k + 2], 's') or '0')
          local batch = tonumber(ARGV[a + 4])
          if owner == '~' .. ARGV[a + 3] and batch <= applied then return 1 end
          if owner ~= ARGV[a + 3] then return 3 end
          if batch > applied + 1 then return 4 end
          if batch > applied then
            for i = first, last, 2 do
              redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', ARGV[a], '*', 'e', ARGV[i], 'd', ARGV[i + 1])
            end
            redis.call('HSET', KEYS[k + 2], 's', batch)
            if ARGV[a + 1] ~= '0' then
              redis.call('HSET', KEYS[k + 2], 'o', '~' .. ARGV[a + 3])
              for j = k + 1, k + 6 do redis.call('PEXPIRE', KEYS[j], ARGV[a + 1]) end
            end
            vix_wake_add(wakes, KEYS[k + 3], ARGV[a + 2])
          end
          if redis.call('EXISTS', KEYS[k + 4]) == 1 then return 2 end
          if ARGV[a + 1] == '0' and vix_abandoned(KEYS[k + 3], KEYS[k + 5], ARGV[a + 5]) then
            redis.call('SET', KEYS[k + 4], '1', 'PX', math.max(1, redis.call('PTTL', KEYS[k + 1])))
            return 2
          end
          return 1
        end
        local states = {}
        local a = 1
        for k = 0, #KEYS - 1, 6 do
          local first = a + 7
          local last = first + 2 * tonumber(ARGV[a + 6]) - 1
          states[#states + 1] = vix_append(k, a, first, last)
          a = last + 1
        end
        vix_wake_send(wakes)
        return states
        """;

    /// <summary>Arguments of one stream before its entries.</summary>
    public const int HeaderArguments = 7;

    private readonly IConnectionMultiplexer _redis;
    private readonly WorkerTelemetry? _telemetry;
    private readonly Channel<TokenStreamWriter> _ready = Channel.CreateUnbounded<TokenStreamWriter>(
        new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<int, List<Call>> _calls = [];
    private readonly List<Task> _sending = [];
    private readonly Task _flushing;

    public StreamFlusher(IConnectionMultiplexer redis, RedisWriteRetry retry, WorkerTelemetry telemetry)
        : this(redis, retry.Pipeline, run: true, telemetry)
    {
    }

    /// <summary>With <paramref name="run"/> false nothing is sent until <see cref="FlushReadyAsync"/> is called.</summary>
    internal StreamFlusher(IConnectionMultiplexer redis, ResiliencePipeline retry, bool run, WorkerTelemetry? telemetry = null)
    {
        _redis = redis;
        _telemetry = telemetry;
        Retry = retry;
        _flushing = run ? RunAsync() : Task.CompletedTask;
    }

    public IDatabase Database => _redis.GetDatabase();

    public ResiliencePipeline Retry { get; }

    /// <summary>Queues a writer that has entries (or its completion) to send; it must not be queued twice at once.</summary>
    public void Schedule(TokenStreamWriter writer)
    {
        if (!_ready.Writer.TryWrite(writer))
        {
            // Only after disposal, when no generation runs any more.
            writer.Fail(new ObjectDisposedException(nameof(StreamFlusher)));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _ready.Writer.TryComplete();
        await _flushing;
    }

    /// <summary>
    /// One round: the next batch of every writer queued now, grouped by hash slot into calls sent together, and
    /// each writer told its stream's state once its call is back.
    /// </summary>
    internal async Task FlushReadyAsync()
    {
        var started = Stopwatch.GetTimestamp();
        while (_ready.Reader.TryRead(out var writer))
        {
            if (writer.TakeBatch() is not { } batch)
            {
                continue;
            }

            // One slot for every key in standalone Redis (-1); the stream's own slot in a cluster.
            var slot = _redis.GetHashSlot(batch.Keys[0]);
            if (!_calls.TryGetValue(slot, out var forSlot))
            {
                _calls[slot] = forSlot = [];
            }

            if (forSlot.Count == 0 || !forSlot[^1].TryAdd(batch))
            {
                var call = new Call();
                call.TryAdd(batch);
                forSlot.Add(call);
            }
        }

        foreach (var forSlot in _calls.Values)
        {
            foreach (var call in forSlot)
            {
                _telemetry?.StreamsPerCall(call.Batches.Count);
                _sending.Add(SendAsync(call));
            }

            forSlot.Clear();
        }

        try
        {
            await Task.WhenAll(_sending);
        }
        finally
        {
            _sending.Clear();
            _telemetry?.StreamsFlushed(Stopwatch.GetElapsedTime(started));
        }
    }

    private async Task RunAsync()
    {
        await Task.Yield();
        // The next round starts when the previous one is back: what arrived meanwhile goes out together.
        while (await _ready.Reader.WaitToReadAsync())
        {
            await FlushReadyAsync();
        }
    }

    private async Task SendAsync(Call call)
    {
        var db = _redis.GetDatabase();
        RedisKey[] keys = [.. call.Keys];
        RedisValue[] values = [.. call.Values];
        RedisResult[] states;
        try
        {
            states = (RedisResult[])(await Retry.ExecuteAsync(
                async _ => await db.ScriptEvaluateAsync(AppendScript, keys, values), CancellationToken.None))!;
        }
        catch (Exception ex)
        {
            foreach (var batch in call.Batches)
            {
                batch.Writer.Fail(ex);
            }

            return;
        }

        for (var i = 0; i < call.Batches.Count; i++)
        {
            call.Batches[i].Writer.Applied((int)states[i]);
        }
    }

    /// <summary>The batches of several streams of one hash slot, sent as one script call.</summary>
    private sealed class Call
    {
        private int _bytes;

        public List<StreamBatch> Batches { get; } = [];

        public List<RedisKey> Keys { get; } = [];

        public List<RedisValue> Values { get; } = [];

        public bool TryAdd(StreamBatch batch)
        {
            if (Batches.Count > 0 && (Batches.Count >= MaxStreamsPerCall || _bytes + batch.Bytes > MaxBytesPerCall))
            {
                return false;
            }

            Batches.Add(batch);
            Keys.AddRange(batch.Keys);
            Values.AddRange(batch.Arguments);
            _bytes += batch.Bytes;
            return true;
        }
    }
}

/// <summary>One writer's next batch: its keys, its header and entries as script arguments, and their size.</summary>
internal sealed record StreamBatch(TokenStreamWriter Writer, RedisKey[] Keys, List<RedisValue> Arguments, int Bytes);
