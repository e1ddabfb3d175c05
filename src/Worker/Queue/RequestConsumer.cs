using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Takes requests from the queue through the <c>workers</c> consumer group and runs them, at most
/// <see cref="WorkerOptions.MaxConcurrency"/> at a time. It waits for work with a blocking
/// <c>XREADGROUP</c> on a connection of its own (a blocking call would stall the shared multiplexer),
/// keeps its in-flight requests claimed, and takes over requests whose worker stopped answering.
/// </summary>
/// <remarks>
/// A queue of several partitions (<see cref="RedisTopology"/>) gets one reader loop per partition, each with its own
/// blocking connection: one <c>XREADGROUP</c> may not name streams of different cluster slots, and blocking reads
/// sharing a connection would wait on each other. Claims, renewals and settlements go to the entry's own partition.
/// The loops share the worker's slots; with several partitions a loop blocks holding one slot only, so a loop
/// waiting on an idle partition never keeps free slots from the others.
/// </remarks>
internal sealed class RequestConsumer(
    IConnectionMultiplexer redis,
    RedisTopology topology,
    IConfiguration configuration,
    GenerationRunner runner,
    EntrySettler settler,
    CancellationRegistry cancellations,
    IOptions<WorkerOptions> options,
    ILogger<RequestConsumer> logger) : BackgroundService
{
    /// <summary>Most requests one blocking read takes, however many slots are free: a full read cannot starve other workers.</summary>
    private const int MaxReadBatch = 64;

    /// <summary>Most orphans one claim round takes, so one survivor does not take a dead worker's whole backlog at once.</summary>
    private const int MaxClaimBatch = 16;

    /// <summary>Hex digits of a random suffix that keep consumer names unique across restarts of one process id.</summary>
    private const int ConsumerSuffixLength = 8;

    /// <summary>Pause after a failed queue read, so a Redis outage is not met with a tight loop of errors.</summary>
    private static readonly TimeSpan ReadFailurePause = TimeSpan.FromSeconds(1);

    /// <summary>Added to the blocking read's BLOCK for the client's own timeout, so a slow answer is not taken for a dead connection.</summary>
    private static readonly TimeSpan BlockingReadMargin = TimeSpan.FromSeconds(5);

    private readonly string _consumer = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..^(32 - ConsumerSuffixLength)];
    private readonly ConcurrentDictionary<(RedisKey Queue, string Id), RedisValue> _inFlight = new();
    private readonly List<Task> _running = [];
    private SemaphoreSlim? _slots;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        _slots = new SemaphoreSlim(settings.MaxConcurrency, settings.MaxConcurrency);
        // Redis may not answer yet (starting, restarting): wait for it rather than die.
        while (true)
        {
            try
            {
                await cancellations.SubscribeAsync(stoppingToken);
                foreach (var queue in topology.Queues)
                {
                    await EnsureGroupAsync(redis.GetDatabase(), queue);
                }

                break;
            }
            catch (Exception ex) when (ex is RedisConnectionException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                Log.QueueReadFailed(logger, ex);
                await DelayQuietlyAsync(ReadFailurePause, stoppingToken);
            }
        }

        if (stoppingToken.IsCancellationRequested)
        {
            return;
        }

        var blocking = new List<ConnectionMultiplexer>(topology.Queues.Count);
        try
        {
            foreach (var queue in topology.Queues)
            {
                blocking.Add(await ConnectBlockingAsync(settings, queue));
            }

            Log.Consuming(logger, _consumer, RedisKeys.WorkersGroup);
            await ConsumeAllAsync(blocking, settings, stoppingToken);
        }
        finally
        {
            foreach (var connection in blocking)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private async Task ConsumeAllAsync(List<ConnectionMultiplexer> blocking, WorkerOptions settings, CancellationToken stoppingToken)
    {
        // Generations stop only after the readers have stopped: a hand-back appended while our own blocking read
        // is still outstanding would be delivered to this dying consumer and wait for a claim.
        using var generationStop = new CancellationTokenSource();
        var renewals = RenewAsync(settings, stoppingToken);
        try
        {
            await Task.WhenAll(topology.Queues.Select((queue, i) =>
                ConsumeAsync(queue, blocking[i].GetDatabase(), settings, stoppingToken, generationStop.Token)));
        }
        finally
        {
            await renewals;
            await generationStop.CancelAsync();
            Task[] running;
            lock (_running)
            {
                running = [.. _running];
            }

            // Each generation ends its stream, or hands its request back, before the host goes down.
            await Task.WhenAll(running);
            foreach (var queue in topology.Queues)
            {
                await RemoveConsumerIfIdleAsync(redis.GetDatabase(), queue);
            }
        }
    }

    /// <summary>
    /// A consumer with nothing pending leaves the group, so worker restarts do not pile up consumers. One with
    /// pending entries stays: deleting it would drop them, and another worker will claim them.
    /// </summary>
    private async Task RemoveConsumerIfIdleAsync(IDatabase db, RedisKey queue)
    {
        try
        {
            var consumers = await db.StreamConsumerInfoAsync(queue, RedisKeys.WorkersGroup);
            if (consumers.Any(c => c.Name == _consumer && c.PendingMessageCount == 0))
            {
                await db.StreamDeleteConsumerAsync(queue, RedisKeys.WorkersGroup, _consumer);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.QueueReadFailed(logger, ex);
        }
    }

    /// <summary>
    /// The one loop of a partition that takes slots: for orphans first when a claim round is due (they have waited a
    /// claim idle time already), then for new requests. A blocking read holds the slots it may fill; were claims
    /// taken elsewhere, a worker with few free slots would never have any left for them.
    /// </summary>
    private async Task ConsumeAsync(RedisKey queue, IDatabase blocking, WorkerOptions settings, CancellationToken stoppingToken,
        CancellationToken generationToken)
    {
        var blockMilliseconds = (long)settings.BlockTimeout.TotalMilliseconds;
        var minIdle = (long)settings.ClaimIdleTime.TotalMilliseconds;
        var lastClaim = Stopwatch.GetTimestamp();
        // XAUTOCLAIM scans at most COUNT x 10 pending entries a call: carry the cursor so orphans behind many
        // live entries are reached too.
        RedisValue cursor = "0-0";
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _slots!.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // As many slots as are free (bounded), each one held for a request this round may start.
            var free = 1;
            while (free < MaxReadBatch && _slots.Wait(0, CancellationToken.None))
            {
                free++;
            }

            var orphansWaiting = false;
            if (Stopwatch.GetElapsedTime(lastClaim) >= settings.ClaimInterval)
            {
                var batch = Math.Min(free, MaxClaimBatch);
                (var started, cursor) = await ClaimOrphansAsync(queue, batch, minIdle, cursor, stoppingToken, generationToken);
                // A full batch means more orphans may be waiting (a dead worker's hundreds of streams): claim again
                // on the next round, as slots allow, rather than a whole interval later, and let this round's read
                // not block, so that the next round comes at once.
                orphansWaiting = started == batch;
                lastClaim = orphansWaiting ? 0 : Stopwatch.GetTimestamp();
                free -= started;
                if (free == 0)
                {
                    continue;
                }
            }

            StreamEntry[] entries;
            try
            {
                if (topology.Queues.Count > 1 && free > 1)
                {
                    // Take what is there at once; block, if need be, holding one slot only.
                    entries = await ReadGroupAsync(blocking, queue, free, blockMilliseconds: null);
                    if (entries.Length == 0)
                    {
                        _slots.Release(free - 1);
                        free = 1;
                    }
                }
                else
                {
                    entries = [];
                }

                if (entries.Length == 0)
                {
                    // Not abandoned on shutdown: BLOCK bounds it, and what it returns is handed back below.
                    entries = await ReadGroupAsync(blocking, queue, free, orphansWaiting ? null : blockMilliseconds);
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                _slots.Release(free);
                Log.QueueReadFailed(logger, ex);
                if (!ex.Message.Contains("NOGROUP", StringComparison.Ordinal) || !await TryEnsureGroupAsync(queue))
                {
                    await DelayQuietlyAsync(ReadFailurePause, stoppingToken);
                }

                continue;
            }

            if (stoppingToken.IsCancellationRequested)
            {
                _slots.Release(free);
                foreach (var entry in entries)
                {
                    await QueueEntries.HandBackAsync(redis.GetDatabase(), queue, entry);
                }

                return;
            }

            if (entries.Length < free)
            {
                _slots.Release(free - entries.Length);
            }

            foreach (var entry in entries)
            {
                Start(queue, entry, generationToken);
            }
        }
    }

    /// <summary>
    /// Claims up to <paramref name="room"/> entries idle past <see cref="WorkerOptions.ClaimIdleTime"/> (their
    /// worker is presumed dead) and starts them on slots the caller holds. Returns how many started and the
    /// next cursor. A failure is logged and claims nothing: this round is what ends the streams of dead
    /// workers, so no error may stop the rounds after it.
    /// </summary>
    private async Task<(int Started, RedisValue Cursor)> ClaimOrphansAsync(
        RedisKey queue, int room, long minIdle, RedisValue cursor, CancellationToken stoppingToken, CancellationToken generationToken)
    {
        StreamEntry[] entries;
        try
        {
            var claimed = await redis.GetDatabase()
                .StreamAutoClaimAsync(queue, RedisKeys.WorkersGroup, _consumer, minIdle, cursor, room)
                .WaitAsync(stoppingToken);
            cursor = claimed.NextStartId;
            entries = [.. claimed.ClaimedEntries.Where(e => !e.IsNull)];
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return (0, cursor);
        }
        catch (Exception ex)
        {
            Log.ClaimFailed(logger, ex);
            return (0, cursor);
        }

        foreach (var entry in entries)
        {
            Log.Claimed(logger, entry[StreamFields.RequestId].ToString());
            Start(queue, entry, generationToken);
        }

        return (entries.Length, cursor);
    }

    private void Start(RedisKey queue, StreamEntry entry, CancellationToken stoppingToken)
    {
        // Entry ids are unique within a partition only.
        var key = (queue, entry.Id.ToString());
        _inFlight[key] = entry.Id;
        var task = RunAsync(queue, entry, key, stoppingToken);
        lock (_running)
        {
            _running.RemoveAll(static t => t.IsCompleted);
            _running.Add(task);
        }
    }

    private async Task RunAsync(RedisKey queue, StreamEntry entry, (RedisKey, string) key, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Yield();
            // Not a child of whatever the consumer loop ran under: the trace continues from the request's traceparent.
            Activity.Current = null;
            await SettleAsync(queue, entry, await runner.RunAsync(entry, stoppingToken));
        }
        finally
        {
            _inFlight.TryRemove(key, out _);
            _slots!.Release();
        }
    }

    /// <summary>Settles the entry as its run asks; one that cannot be settled stays pending and is claimed later.</summary>
    private async Task SettleAsync(RedisKey queue, StreamEntry entry, RunOutcome outcome)
    {
        var db = redis.GetDatabase();
        try
        {
            switch (outcome)
            {
                case RunOutcome.Done:
                    await settler.AcknowledgeAsync(queue, entry.Id);
                    break;
                case RunOutcome.HandBack:
                    await QueueEntries.HandBackAsync(db, queue, entry);
                    break;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.SettleFailed(logger, ex, entry.Id.ToString());
        }
    }

    /// <summary>
    /// Every claim interval, resets the idle time of this worker's in-flight entries, so a long generation is
    /// never taken for an orphan. A failed round is logged and the next one runs.
    /// </summary>
    private async Task RenewAsync(WorkerOptions settings, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(settings.ClaimInterval);
        var db = redis.GetDatabase();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(stoppingToken);
                foreach (var partition in _inFlight.GroupBy(e => e.Key.Queue, e => e.Value))
                {
                    await QueueEntries.RenewAsync(db, partition.Key, _consumer, [.. partition]).WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.RenewFailed(logger, ex);
            }
        }
    }

    /// <summary>
    /// <c>XREADGROUP</c> on one partition, blocking up to <paramref name="blockMilliseconds"/> (not at all when null).
    /// The key goes as a <see cref="RedisKey"/>, so that in a cluster the command is sent to the partition's shard.
    /// </summary>
    private async Task<StreamEntry[]> ReadGroupAsync(IDatabase blocking, RedisKey queue, int count, long? blockMilliseconds)
    {
        List<object> args = ["GROUP", RedisKeys.WorkersGroup, _consumer, "COUNT", count];
        if (blockMilliseconds is { } block)
        {
            args.AddRange(["BLOCK", block]);
        }

        args.AddRange(["STREAMS", queue, ">"]);
        return ParseSingleStream(await blocking.ExecuteAsync("XREADGROUP", args, CommandFlags.None));
    }

    /// <summary>Parses a RESP2 <c>XREADGROUP</c> reply for one stream: <c>[[name, [[id, [field, value, ...]], ...]]]</c>.</summary>
    private static StreamEntry[] ParseSingleStream(RedisResult result)
    {
        if (result.IsNull || result.Length == 0)
        {
            return [];
        }

        var entries = result[0][1];
        var parsed = new StreamEntry[entries.Length];
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i];
            var fields = entry[1];
            var values = new NameValueEntry[fields.IsNull ? 0 : fields.Length / 2];
            for (var f = 0; f < values.Length; f++)
            {
                values[f] = new NameValueEntry((RedisValue)fields[2 * f], (RedisValue)fields[2 * f + 1]);
            }

            parsed[i] = new StreamEntry((RedisValue)entry[0], values);
        }

        return parsed;
    }

    private async Task<ConnectionMultiplexer> ConnectBlockingAsync(WorkerOptions settings, RedisKey queue)
    {
        var connectionString = configuration.GetConnectionString("redis")
            ?? throw new InvalidOperationException("ConnectionStrings:redis is not set.");
        var config = ConfigurationOptions.Parse(connectionString);
        config.Protocol = RedisProtocol.Resp2;
        config.AbortOnConnectFail = false;
        config.ClientName = $"vix-worker-block-{Environment.ProcessId}-{queue}";
        config.AsyncTimeout = (int)(settings.BlockTimeout + BlockingReadMargin).TotalMilliseconds;
        return await ConnectionMultiplexer.ConnectAsync(config);
    }

    /// <summary>Recreates the consumer group (lost with Redis's data); false when Redis did not answer.</summary>
    private async Task<bool> TryEnsureGroupAsync(RedisKey queue)
    {
        try
        {
            await EnsureGroupAsync(redis.GetDatabase(), queue);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.QueueReadFailed(logger, ex);
            return false;
        }
    }

    private static async Task EnsureGroupAsync(IDatabase db, RedisKey queue)
    {
        try
        {
            // From 0, not $: requests queued before the first worker started are served too.
            await db.StreamCreateConsumerGroupAsync(queue, RedisKeys.WorkersGroup, "0-0", createStream: true);
        }
        catch (RedisServerException ex) when (ex.Message.Contains("BUSYGROUP", StringComparison.Ordinal))
        {
            // Another worker created it first.
        }
    }

    private static async Task DelayQuietlyAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
    }

    public override void Dispose()
    {
        _slots?.Dispose();
        base.Dispose();
    }
}
