using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Samples the queue's depth and pending count every few seconds for the <c>vix.queue.*</c> gauges.</summary>
internal sealed class QueueSampler(IConnectionMultiplexer redis, StreamApiTelemetry telemetry, ILogger<QueueSampler> logger) : BackgroundService
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
                    var depth = db.StreamLengthAsync(RedisKeys.Requests);
                    var pending = db.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
                    telemetry.QueueSample = (await depth.WaitAsync(stoppingToken), (await pending.WaitAsync(stoppingToken)).PendingMessageCount);
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
