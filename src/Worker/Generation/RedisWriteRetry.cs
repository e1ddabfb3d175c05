using Polly;
using Polly.Telemetry;

namespace VixAspire.Worker.Generation;

/// <summary>
/// Retries a token-stream write through a Redis blip (<see cref="RedisRetry.IsTransient"/>) for about ten seconds,
/// while the multiplexer reconnects or a replica takes over. Safe because every write is fenced and numbered, so a
/// retried batch that had in fact been applied is not applied twice; which is also why it may start sooner and wait
/// longer between attempts (50 ms to 2 s) than the API's reads.
/// </summary>
internal sealed class RedisWriteRetry(TimeProvider time, ILoggerFactory loggers)
{
    public ResiliencePipeline Pipeline { get; } = new ResiliencePipelineBuilder { TimeProvider = time }
        .AddRetry(RedisRetry.Options(maxRetryAttempts: 10, delay: TimeSpan.FromMilliseconds(50), maxDelay: TimeSpan.FromSeconds(2)))
        .ConfigureTelemetry(ResilienceTelemetry.Quiet(new TelemetryOptions { LoggerFactory = loggers }))
        .Build();
}
