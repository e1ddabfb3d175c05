using System.Diagnostics;
using System.Threading.Channels;
using Polly;
using StackExchange.Redis;

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
                async _ => await db.ScriptEvaluateAsync(TokenStreamScripts.Append, keys, values), CancellationToken.None))!;
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
            call.Batches[i].Writer.Applied((AppendState)(int)states[i]);
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
