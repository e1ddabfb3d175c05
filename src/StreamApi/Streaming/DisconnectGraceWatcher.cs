using System.Threading.Channels;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// When the last client of a stream leaves, waits the disconnect grace, then cancels the generation unless a
/// client attached again meanwhile (on any replica). One loop serves every stream: the grace is the same for
/// all, so checks fall due in the order they were scheduled. Workers judge abandonment too, on every append, so a
/// check this replica never gets to (it stopped or died) is not a stream left running.
/// </summary>
internal sealed class DisconnectGraceWatcher(
    StreamCancellation cancellation,
    StreamApiTelemetry telemetry,
    IOptionsMonitor<StreamingOptions> options,
    TimeProvider time,
    ILogger<DisconnectGraceWatcher> logger) : BackgroundService
{
    private readonly Channel<(string Id, long Due, bool Again)> _checks =
        Channel.CreateUnbounded<(string, long, bool)>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Schedules the check for a stream whose last client just left.</summary>
    public void Schedule(string id) => Schedule(id, again: false);

    private void Schedule(string id, bool again) =>
        _checks.Writer.TryWrite((id, time.GetTimestamp() + (long)(options.CurrentValue.DisconnectGrace.TotalSeconds * time.TimestampFrequency), again));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (id, due, again) in _checks.Reader.ReadAllAsync(stoppingToken))
            {
                var wait = time.GetElapsedTime(time.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, stoppingToken);
                }

                try
                {
                    switch (await cancellation.CancelIfAbandonedAsync(id, stoppingToken))
                    {
                        case CancelScripts.Reply.Cancelled:
                            Log.AbandonedStreamCancelled(logger, id);
                            telemetry.Cancelled(CancelSources.Disconnect);
                            break;
                        case CancelScripts.Reply.NotYet when !again:
                            // Redis's clock is behind ours, or a lease of a replica that died ran out after the last
                            // client left: its grace runs from then, so look once more.
                            Schedule(id, again: true);
                            break;
                    }
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    Log.GraceCheckFailed(logger, ex, id);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: the workers' appends judge the streams still in their grace.
        }
    }
}
