using System.Threading.Channels;
using StackExchange.Redis;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Acknowledges and deletes finished queue entries, many per command. An entry finished while none is in flight goes
/// out at once; those finished while one is in flight wait for it and then go out together, one script call per queue
/// partition. A worker that ends hundreds of generations a second so sends a few commands per round trip rather than
/// two per generation, and a lone generation waits for nothing.
/// </summary>
internal sealed class EntrySettler : IAsyncDisposable
{
    /// <summary>Most entries one call names, so one script call holds Redis only briefly.</summary>
    internal const int MaxEntriesPerCall = 500;

    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger<EntrySettler> _logger;
    private readonly Channel<Done> _done = Channel.CreateUnbounded<Done>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _settling;

    public EntrySettler(IConnectionMultiplexer redis, ILogger<EntrySettler> logger)
    {
        _redis = redis;
        _logger = logger;
        _settling = Task.Run(SettleAsync);
    }

    /// <summary>
    /// Acknowledges and deletes entry <paramref name="entryId"/> of <paramref name="queue"/>; completes once Redis
    /// answered. A failure is logged, not thrown: unacknowledged, the entry is claimed later and settled by whoever
    /// claims it, and its stream already has its end.
    /// </summary>
    public Task AcknowledgeAsync(RedisKey queue, RedisValue entryId)
    {
        var done = new Done(queue, entryId);
        return _done.Writer.TryWrite(done) ? done.Settled.Task : QueueEntries.AcknowledgeAsync(_redis.GetDatabase(), queue, [entryId]);
    }

    public async ValueTask DisposeAsync()
    {
        _done.Writer.TryComplete();
        await _settling;
    }

    private async Task SettleAsync()
    {
        var batch = new List<Done>();
        while (await _done.Reader.WaitToReadAsync())
        {
            while (_done.Reader.TryRead(out var done))
            {
                batch.Add(done);
            }

            var db = _redis.GetDatabase();
            var calls = new List<Task>();
            foreach (var partition in batch.GroupBy(d => d.Queue))
            {
                foreach (var chunk in partition.Chunk(MaxEntriesPerCall))
                {
                    calls.Add(SendAsync(db, partition.Key, chunk));
                }
            }

            await Task.WhenAll(calls);
            batch.Clear();
        }
    }

    private async Task SendAsync(IDatabase db, RedisKey queue, Done[] entries)
    {
        try
        {
            await QueueEntries.AcknowledgeAsync(db, queue, [.. entries.Select(e => e.EntryId)]);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.SettleFailed(_logger, ex, entries[0].EntryId.ToString());
        }
        finally
        {
            foreach (var entry in entries)
            {
                entry.Settled.TrySetResult();
            }
        }
    }

    private sealed record Done(RedisKey Queue, RedisValue EntryId)
    {
        public TaskCompletionSource Settled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
