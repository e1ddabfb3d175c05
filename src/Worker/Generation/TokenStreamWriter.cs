using System.Threading.Channels;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// Appends entries to one request's token stream. Entries queue in memory while a write is in flight and
/// go out together: one script call per batch appends them all (<c>XADD ... NOMKSTREAM MAXLEN ~</c>), sets
/// the expiry with the last one, and publishes one wake-up. At a model's pace each token is its own batch;
/// when tokens arrive faster than a round trip, batches grow and round trips do not.
/// </summary>
internal sealed class TokenStreamWriter : IAsyncDisposable
{
    // KEYS[1] token stream, KEYS[2] clients hash, KEYS[3] cancelled flag; ARGV[1] MAXLEN, ARGV[2] expiry in ms
    // (0: leave as is; set with the end entry on every key of the request), ARGV[3] wake channel, then
    // event/data pairs. NOMKSTREAM: a stream that expired or was removed is not brought back. Returns 0 when
    // the stream is gone, 2 when the request is marked cancelled (a cancel the pub/sub message missed), else 1.
    private const string AppendScript = """
        for i = 4, #ARGV, 2 do
          if not redis.call('XADD', KEYS[1], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i], 'd', ARGV[i + 1]) then
            return 0
          end
        end
        if ARGV[2] ~= '0' then
          for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
        end
        redis.call('PUBLISH', ARGV[3], '')
        if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
        return 1
        """;

    private const int MaxEntriesPerBatch = 512;

    private static readonly RedisValue TokenEvent = EventNames.Token;
    private static readonly RedisValue ErrorEvent = EventNames.Error;
    private static readonly RedisValue EndEvent = EventNames.End;

    private readonly IDatabase _db;
    private readonly RedisKey[] _keys;
    private readonly RedisValue _maxLength;
    private readonly RedisValue _channel;
    private readonly long _finalTtlMilliseconds;
    private readonly Channel<Pending> _pending = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(4 * MaxEntriesPerBatch) { SingleReader = true, SingleWriter = true });
    private readonly Task _flushing;
    private readonly CancellationTokenSource _cancelledByFlag = new();

    public TokenStreamWriter(IDatabase db, string id, int maxStreamEntries, TimeSpan resumeWindow)
    {
        _db = db;
        _keys = [RedisKeys.Tokens(id), RedisKeys.Clients(id), RedisKeys.Cancelled(id)];
        _maxLength = maxStreamEntries;
        _channel = RedisKeys.Wake(id).ToString();
        _finalTtlMilliseconds = (long)resumeWindow.TotalMilliseconds;
        _flushing = FlushLoopAsync();
    }

    /// <summary>False once the stream is gone (expired, removed) or Redis failed: there is no one to write to.</summary>
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
        var args = new List<RedisValue>(3 + 2 * MaxEntriesPerBatch);
        while (await reader.WaitToReadAsync())
        {
            args.Clear();
            args.Add(_maxLength);
            args.Add(0);
            args.Add(_channel);
            while (args.Count < 3 + 2 * MaxEntriesPerBatch && reader.TryRead(out var entry))
            {
                args.Add(entry.Event);
                args.Add(entry.Data);
                if (entry.Event == EndEvent)
                {
                    args[1] = _finalTtlMilliseconds;
                }
            }

            var result = (int)await _db.ScriptEvaluateAsync(AppendScript, _keys, [.. args]);
            if (result == 0)
            {
                // The stream no longer exists: stop accepting, so the generation sees IsOpen == false.
                _pending.Writer.TryComplete();
                return;
            }

            if (result == 2 && !_cancelledByFlag.IsCancellationRequested)
            {
                await _cancelledByFlag.CancelAsync();
            }
        }
    }

    private readonly record struct Pending(RedisValue Event, byte[] Data);
}
