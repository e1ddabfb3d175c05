using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Samples the queue's depth and pending count, summed over its partitions, every few seconds for the <c>vix.queue.*</c> gauges.</summary>
internal sealed class QueueSampler(IConnectionMultiplexer redis, RedisTopology topology, StreamApiTelemetry telemetry, ILogger<QueueSampler> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            do
            {
                try
                {
                    var db = redis.GetDatabase();
                    var depths = Task.WhenAll(topology.Queues.Select(q => db.StreamLengthAsync(q)));
                    var pending = Task.WhenAll(topology.Queues.Select(q => db.StreamPendingAsync(q, RedisKeys.WorkersGroup)));
                    telemetry.QueueSample = ((await depths.WaitAsync(stoppingToken)).Sum(),
                        (await pending.WaitAsync(stoppingToken)).Sum(p => (long)p.PendingMessageCount));
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    // No group yet (no worker has started) reads as an error too: keep the last sample.
                    Log.QueueSampleFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }
}
