using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// The claims of this worker on queue entries: it keeps the entries of its running generations claimed (renewals),
/// and takes over entries whose worker stopped answering (orphans).
/// </summary>
internal sealed class QueueClaims(IConnectionMultiplexer redis, ConsumerGroup group, IOptions<WorkerOptions> options, ILogger<QueueClaims> logger)
{
    /// <summary>Most orphans one claim round takes, so one survivor does not take a dead worker's whole backlog at once.</summary>
    private const int MaxClaimBatch = 16;

    // Entry ids are unique within a partition only.
    private readonly ConcurrentDictionary<(RedisKey Queue, string Id), RedisValue> _inFlight = new();

    /// <summary>Renews <paramref name="request"/>'s entry from now until <see cref="Release"/>.</summary>
    public void Hold(QueuedRequest request) => _inFlight[(request.Queue, request.EntryId.ToString())] = request.EntryId;

    public void Release(QueuedRequest request) => _inFlight.TryRemove((request.Queue, request.EntryId.ToString()), out _);

    /// <summary>
    /// Claims up to <paramref name="free"/> (at most <see cref="MaxClaimBatch"/>) entries of <paramref name="rounds"/>'
    /// partition idle past <see cref="WorkerOptions.ClaimIdleTime"/> (their worker is presumed dead), for slots the
    /// caller holds, and records the round. A failure is logged and claims nothing: this round is what ends the
    /// streams of dead workers, so no error may stop the rounds after it.
    /// </summary>
    public async Task<QueuedRequest[]> ClaimOrphansAsync(ClaimRounds rounds, int free, CancellationToken cancellationToken)
    {
        var batch = Math.Min(free, MaxClaimBatch);
        var minIdle = (long)options.Value.ClaimIdleTime.TotalMilliseconds;
        QueuedRequest[] claimed = [];
        var cursor = rounds.Cursor;
        try
        {
            var result = await redis.GetDatabase()
                .StreamAutoClaimAsync(rounds.Queue, RedisKeys.WorkersGroup, group.Consumer, minIdle, cursor, batch)
                .WaitAsync(cancellationToken);
            cursor = result.NextStartId;
            claimed = [.. result.ClaimedEntries.Where(e => !e.IsNull).Select(e => QueueEntries.Read(rounds.Queue, e))];
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            Log.ClaimFailed(logger, ex);
        }

        foreach (var request in claimed)
        {
            Log.Claimed(logger, request.RequestId);
        }

        rounds.Completed(cursor, full: claimed.Length == batch);
        return claimed;
    }

    /// <summary>
    /// Every claim interval, resets the idle time of this worker's in-flight entries, so a long generation is
    /// never taken for an orphan. A failed round is logged and the next one runs.
    /// </summary>
    public async Task RenewAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.ClaimInterval);
        var db = redis.GetDatabase();
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(cancellationToken);
                foreach (var partition in _inFlight.GroupBy(e => e.Key.Queue, e => e.Value))
                {
                    await QueueEntries.RenewAsync(db, partition.Key, group.Consumer, [.. partition]).WaitAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.RenewFailed(logger, ex);
            }
        }
    }
}

/// <summary>The orphan claims of one partition: when the next round is due, and where its scan goes on.</summary>
internal sealed class ClaimRounds(RedisKey queue, TimeSpan interval)
{
    private long _lastRound = Stopwatch.GetTimestamp();

    public RedisKey Queue { get; } = queue;

    /// <summary>
    /// XAUTOCLAIM scans at most COUNT x 10 pending entries a call: the cursor carries on, so orphans behind many live
    /// entries are reached too.
    /// </summary>
    public RedisValue Cursor { get; private set; } = "0-0";

    /// <summary>
    /// The last round took a full batch, so more orphans may be waiting (a dead worker's hundreds of streams): the
    /// next round comes at once, as slots allow, rather than a whole interval later, and no read blocks before it.
    /// </summary>
    public bool OrphansWaiting { get; private set; }

    public bool Due => OrphansWaiting || Stopwatch.GetElapsedTime(_lastRound) >= interval;

    public void Completed(RedisValue cursor, bool full)
    {
        Cursor = cursor;
        OrphansWaiting = full;
        _lastRound = Stopwatch.GetTimestamp();
    }
}
