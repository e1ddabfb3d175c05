using System.Threading.Channels;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// Appends entries to one request's token stream, as the one generation allowed to write it. Entries queue in
/// memory and go out in batches through the worker's <see cref="StreamFlusher"/>, which sends the batches of many
/// streams in one script call; this writer has at most one batch in flight, and what arrives meanwhile forms the
/// next. At a model's pace each token is its own batch; when tokens arrive faster than a round trip, batches grow
/// and round trips do not.
/// </summary>
/// <remarks>
/// Fencing: <see cref="TakeAsync"/> makes this generation the stream's writer (<see cref="RedisKeys.Writer"/>),
/// and every batch is refused once another generation took the stream over or the stream ended. Batches are
/// numbered, so a batch retried after a dropped connection, which Redis may already have applied, is applied once.
/// </remarks>
internal sealed class TokenStreamWriter : IAsyncDisposable
{
    private const int MaxEntriesPerBatch = 512;

    private static readonly RedisValue TokenEvent = EventNames.Token;
    private static readonly RedisValue ToolCallEvent = EventNames.ToolCall;
    private static readonly RedisValue ReasoningEvent = EventNames.Reasoning;
    private static readonly RedisValue ErrorEvent = EventNames.Error;
    private static readonly RedisValue EndEvent = EventNames.End;
    private static readonly RedisValue[] EmptyHeader = new RedisValue[TokenStreamScripts.HeaderArguments];

    private readonly StreamFlusher _flusher;
    private readonly RedisKey[] _keys;
    private readonly RedisValue _maxLength;
    private readonly RedisValue _id;
    private readonly RedisValue _owner;
    private readonly long _graceMilliseconds;
    private readonly long _finalTtlMilliseconds;
    private readonly Channel<Pending> _pending = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(4 * MaxEntriesPerBatch) { SingleReader = true, SingleWriter = true });
    private readonly List<RedisValue> _arguments = new(TokenStreamScripts.HeaderArguments + 2 * MaxEntriesPerBatch);
    private readonly TaskCompletionSource _flushed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _cancelledByFlag = new();
    private long _batch;

    /// <summary>1 while this writer is queued at the flusher or has a batch in flight there, else 0.</summary>
    private int _scheduled;

    private TokenStreamWriter(StreamFlusher flusher, string id, string owner, StreamingOptions limits)
    {
        _flusher = flusher;
        _keys = TokenStreamScripts.KeysOf(id);
        _maxLength = limits.MaxStreamEntries;
        _id = id;
        _owner = owner;
        _graceMilliseconds = (long)limits.DisconnectGrace.TotalMilliseconds;
        _finalTtlMilliseconds = (long)limits.ResumeWindow.TotalMilliseconds;
    }

    /// <summary>What a generation found when it took its stream.</summary>
    /// <param name="Writer">The writer, or null when the stream is gone or already ended.</param>
    /// <param name="Ended">The stream has its end already (else, without a writer, it is gone).</param>
    /// <param name="LastEvent">The stream's last event: <c>start</c> when no generation has written to it yet.</param>
    /// <param name="Cancelled">The request was cancelled before this generation took it.</param>
    public readonly record struct Taken(TokenStreamWriter? Writer, bool Ended, string LastEvent, bool Cancelled);

    /// <summary>
    /// Makes a new generation the stream's only writer, fencing off any earlier one (a worker presumed dead that is
    /// in fact alive), and renews the stream's expiry from now.
    /// </summary>
    public static async Task<Taken> TakeAsync(StreamFlusher flusher, string id, StreamingOptions limits)
    {
        var owner = Guid.NewGuid().ToString("N");
        var ttl = (long)limits.InitialStreamTtl.TotalMilliseconds;
        var keys = TokenStreamScripts.KeysOf(id);
        var db = flusher.Database;
        var result = (RedisResult[])(await flusher.Retry.ExecuteAsync(
            async _ => await db.ScriptEvaluateAsync(TokenStreamScripts.Take, keys, [owner, ttl]), CancellationToken.None))!;
        var state = (TakeState)(int)result[0];
        return state == TakeState.Taken
            ? new Taken(new TokenStreamWriter(flusher, id, owner, limits), false, result[1].ToString(), (int)result[2] == 1)
            : new Taken(null, state == TakeState.Ended, result[1].ToString(), false);
    }

    /// <summary>True once another generation took the stream over: this one must neither write nor settle its entry.</summary>
    public bool Fenced { get; private set; }

    public bool IsOpen => !_flushed.Task.IsCompleted;

    /// <summary>Cancelled when a write finds the request marked cancelled in Redis.</summary>
    public CancellationToken CancelledInRedis => _cancelledByFlag.Token;

    public ValueTask AppendTokenAsync(string text, int index, CancellationToken cancellationToken) =>
        EnqueueAsync(new Pending(TokenEvent, Envelopes.Token(text, index)), cancellationToken);

    public ValueTask AppendToolCallAsync(int index, string? id, string? name, string arguments, CancellationToken cancellationToken) =>
        EnqueueAsync(new Pending(ToolCallEvent, Envelopes.ToolCall(index, id, name, arguments)), cancellationToken);

    public ValueTask AppendReasoningAsync(string text, CancellationToken cancellationToken) =>
        EnqueueAsync(new Pending(ReasoningEvent, Envelopes.Reasoning(text)), cancellationToken);

    public ValueTask AppendErrorAsync(string code, string message, bool retryable) =>
        EnqueueAsync(new Pending(ErrorEvent, Envelopes.Error(code, message, retryable)), CancellationToken.None);

    /// <summary>Appends the <c>end</c> entry, waits until everything is in Redis, and shortens the expiry to the resume window.</summary>
    public async Task CompleteAsync(string reason, int outputTokens, long? inputTokens = null)
    {
        await EnqueueAsync(new Pending(EndEvent, Envelopes.End(reason, outputTokens, inputTokens)), CancellationToken.None);
        CompleteWriting();
        await _flushed.Task;
    }

    public async ValueTask DisposeAsync()
    {
        CompleteWriting();
        try
        {
            await _flushed.Task;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Already reported to whoever awaited CompleteAsync; disposal must not throw.
        }
        finally
        {
            _cancelledByFlag.Dispose();
        }
    }

    /// <summary>
    /// Called by the flusher: numbers and returns the next batch (entries waiting, up to a bound), or null when nothing
    /// waits; then, once everything is written, the writer is done.
    /// </summary>
    internal StreamBatch? TakeBatch()
    {
        var reader = _pending.Reader;
        _arguments.Clear();
        _arguments.AddRange(EmptyHeader);
        _arguments[TokenStreamScripts.MaxLengthArgument] = _maxLength;
        _arguments[TokenStreamScripts.ExpiryArgument] = TokenStreamScripts.KeepExpiry;
        _arguments[TokenStreamScripts.StreamIdArgument] = _id;
        _arguments[TokenStreamScripts.WriterArgument] = _owner;
        _arguments[TokenStreamScripts.BatchArgument] = _batch + 1;
        _arguments[TokenStreamScripts.GraceArgument] = _graceMilliseconds;
        var bytes = 0;
        var entries = 0;
        while (entries < MaxEntriesPerBatch && reader.TryRead(out var entry))
        {
            _arguments.Add(entry.Event);
            _arguments.Add(entry.Data);
            bytes += entry.Data.Length;
            entries++;
            if (entry.Event == EndEvent)
            {
                _arguments[TokenStreamScripts.ExpiryArgument] = _finalTtlMilliseconds;
            }
        }

        if (entries == 0)
        {
            // Scheduled for its completion, or a wake-up raced with the previous batch: nothing to send.
            Release();
            return null;
        }

        _batch++;
        _arguments[TokenStreamScripts.EntryCountArgument] = entries;
        return new StreamBatch(this, _keys, _arguments, bytes);
    }

    /// <summary>Called by the flusher with the script's state for this writer's batch.</summary>
    internal void Applied(AppendState state)
    {
        if (state is AppendState.Gone or AppendState.Fenced or AppendState.Lost)
        {
            // Gone, or written by another generation now: stop accepting, so the generation sees IsOpen == false.
            // Entries lost with a failover count as fenced: the stream has a gap this writer cannot fill, so the
            // entry stays pending and whoever claims it ends the stream with worker_lost.
            Fenced = state is not AppendState.Gone;
            _pending.Writer.TryComplete();
            _flushed.TrySetResult();
            return;
        }

        if (state == AppendState.Cancelled && !_cancelledByFlag.IsCancellationRequested)
        {
            try
            {
                _cancelledByFlag.Cancel();
            }
            catch (AggregateException)
            {
                // A callback of the generation failed; the token is cancelled all the same, and the flusher must go on.
            }
        }

        Release();
    }

    /// <summary>Called by the flusher when a batch could not be written (Redis failed past the retries).</summary>
    internal void Fail(Exception cause)
    {
        _pending.Writer.TryComplete(cause);
        _flushed.TrySetException(cause);
    }

    private void CompleteWriting()
    {
        _pending.Writer.TryComplete();
        Schedule();
    }

    private ValueTask EnqueueAsync(Pending entry, CancellationToken cancellationToken)
    {
        if (!_pending.Writer.TryWrite(entry))
        {
            return EnqueueSlowAsync(entry, cancellationToken);
        }

        Schedule();
        return ValueTask.CompletedTask;
    }

    private async ValueTask EnqueueSlowAsync(Pending entry, CancellationToken cancellationToken)
    {
        try
        {
            await _pending.Writer.WriteAsync(entry, cancellationToken);
            Schedule();
        }
        catch (ChannelClosedException)
        {
            // The stream is gone or Redis failed; IsOpen tells the generation, CompleteAsync rethrows the cause.
        }
    }

    /// <summary>Hands this writer to the flusher unless it is there already (queued, or its batch in flight).</summary>
    private void Schedule()
    {
        if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
        {
            _flusher.Schedule(this);
        }
    }

    /// <summary>
    /// Off the flusher: done once the generation stopped writing and everything is sent; queued again when entries
    /// arrived meanwhile (an entry written while this writer was scheduled did not queue it).
    /// </summary>
    private void Release()
    {
        // A full fence: the checks below must not be read before the flag is cleared.
        Interlocked.Exchange(ref _scheduled, 0);
        if (_pending.Reader.Completion.IsCompleted)
        {
            _flushed.TrySetResult();
        }
        else if (_pending.Reader.Count > 0)
        {
            Schedule();
        }
    }

    private readonly record struct Pending(RedisValue Event, byte[] Data);
}
