using System.Threading.Channels;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// When the last client of a stream leaves, waits the disconnect grace, then cancels the generation unless a
/// client attached again meanwhile (on any replica). One loop serves every stream: the grace is the same for
/// all, so checks fall due in the order they were scheduled.
/// </summary>
internal sealed class DisconnectGraceWatcher(
    StreamControl control,
    StreamApiTelemetry telemetry,
    IOptionsMonitor<StreamingOptions> options,
    TimeProvider time,
    ILogger<DisconnectGraceWatcher> logger) : BackgroundService
{
    private readonly Channel<(string Id, long Epoch, long Due)> _checks =
        Channel.CreateUnbounded<(string, long, long)>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Schedules the check for a stream whose last client left at <paramref name="epoch"/>.</summary>
    public void Schedule(string id, long epoch) =>
        _checks.Writer.TryWrite((id, epoch, time.GetTimestamp() + (long)(options.CurrentValue.DisconnectGrace.TotalSeconds * time.TimestampFrequency)));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (id, epoch, due) in _checks.Reader.ReadAllAsync(stoppingToken))
            {
                var wait = time.GetElapsedTime(time.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, stoppingToken);
                }

                try
                {
                    if (await control.CancelIfAbandonedAsync(id, epoch, stoppingToken) == StreamControl.CancelOutcome.Cancelled)
                    {
                        Log.AbandonedStreamCancelled(logger, id);
                        telemetry.Cancelled("disconnect");
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
            // Shutting down: streams still in their grace keep running until their max duration.
        }
    }
}
