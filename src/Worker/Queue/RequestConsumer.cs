using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Takes requests from the queue through the <c>workers</c> consumer group and runs them, at most
/// <see cref="WorkerOptions.MaxConcurrency"/> at a time: new ones from a <see cref="QueueReader"/> per partition,
/// orphans through <see cref="QueueClaims"/>, which also keeps the running ones claimed.
/// </summary>
/// <remarks>
/// A queue of several partitions (<see cref="RedisTopology"/>) gets one slot loop per partition, each with its own
/// reader: one <c>XREADGROUP</c> may not name streams of different cluster slots. Claims, renewals and settlements go
/// to the entry's own partition. The loops share the worker's slots; with several partitions a loop blocks holding
/// one slot only, so a loop waiting on an idle partition never keeps free slots from the others.
/// </remarks>
internal sealed class RequestConsumer(
    RedisTopology topology,
    IConfiguration configuration,
    ConsumerGroup group,
    QueueClaims claims,
    RequestRuns runs,
    CancellationRegistry cancellations,
    IOptions<WorkerOptions> options,
    ILogger<RequestConsumer> logger) : BackgroundService
{
    /// <summary>Most requests one read takes, however many slots are free: a full read cannot starve other workers.</summary>
    private const int MaxReadBatch = 64;

    /// <summary>Pause after a failed queue read, so a Redis outage is not met with a tight loop of errors.</summary>
    private static readonly TimeSpan ReadFailurePause = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        // Redis may not answer yet (starting, restarting): wait for it rather than die.
        while (true)
        {
            try
            {
                await cancellations.SubscribeAsync(stoppingToken);
                foreach (var queue in topology.Queues)
                {
                    await group.EnsureAsync(queue);
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

        var readers = new List<QueueReader>(topology.Queues.Count);
        try
        {
            foreach (var queue in topology.Queues)
            {
                readers.Add(await QueueReader.ConnectAsync(configuration, queue, group.Consumer, settings.BlockTimeout));
            }

            Log.Consuming(logger, group.Consumer, RedisKeys.WorkersGroup);
            await ConsumeAllAsync(readers, settings, stoppingToken);
        }
        finally
        {
            foreach (var reader in readers)
            {
                await reader.DisposeAsync();
            }
        }
    }

    private async Task ConsumeAllAsync(List<QueueReader> readers, WorkerOptions settings, CancellationToken stoppingToken)
    {
        // Generations stop only after the readers have stopped: a hand-back appended while our own blocking read
        // is still outstanding would be delivered to this dying consumer and wait for a claim.
        using var generationStop = new CancellationTokenSource();
        var renewals = claims.RenewAsync(stoppingToken);
        try
        {
            await Task.WhenAll(readers.Select(reader =>
                ConsumeAsync(reader, new ClaimRounds(reader.Queue, settings.ClaimInterval), stoppingToken, generationStop.Token)));
        }
        finally
        {
            await renewals;
            await generationStop.CancelAsync();
            // Each generation ends its stream, or hands its request back, before the host goes down.
            await runs.WhenAllSettled();
            foreach (var queue in topology.Queues)
            {
                await group.LeaveIfIdleAsync(queue);
            }
        }
    }

    /// <summary>
    /// The one loop of a partition that takes slots: for orphans first when a claim round is due (they have waited a
    /// claim idle time already), then for new requests. A blocking read holds the slots it may fill; were claims
    /// taken elsewhere, a worker with few free slots would never have any left for them.
    /// </summary>
    private async Task ConsumeAsync(QueueReader reader, ClaimRounds rounds, CancellationToken stoppingToken, CancellationToken generationToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            // As many slots as are free (bounded), each one held for a request this round may start.
            var free = await runs.TakeSlotsAsync(MaxReadBatch, stoppingToken);
            if (free == 0)
            {
                return;
            }

            if (rounds.Due)
            {
                var orphans = await claims.ClaimOrphansAsync(rounds, free, stoppingToken);
                foreach (var orphan in orphans)
                {
                    runs.Start(orphan, generationToken);
                }

                free -= orphans.Length;
                if (free == 0)
                {
                    continue;
                }
            }

            QueuedRequest[] requests;
            try
            {
                requests = [];
                if (topology.Queues.Count > 1 && free > 1)
                {
                    // Take what is there at once; block, if need be, holding one slot only.
                    requests = await reader.ReadAsync(free, block: false);
                    if (requests.Length == 0)
                    {
                        runs.ReleaseSlots(free - 1);
                        free = 1;
                    }
                }

                if (requests.Length == 0)
                {
                    // Not abandoned on shutdown: BLOCK bounds it, and what it returns is handed back below.
                    requests = await reader.ReadAsync(free, block: !rounds.OrphansWaiting);
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                runs.ReleaseSlots(free);
                Log.QueueReadFailed(logger, ex);
                if (!ConsumerGroup.IsMissing(ex) || !await group.TryRecreateAsync(reader.Queue))
                {
                    await DelayQuietlyAsync(ReadFailurePause, stoppingToken);
                }

                continue;
            }

            if (stoppingToken.IsCancellationRequested)
            {
                runs.ReleaseSlots(free);
                await runs.HandBackAsync(requests);
                return;
            }

            runs.ReleaseSlots(free - requests.Length);
            foreach (var request in requests)
            {
                runs.Start(request, generationToken);
            }
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
}
