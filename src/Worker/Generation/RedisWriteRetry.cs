using Polly;
using Polly.Retry;
using Polly.Telemetry;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// Retries a token-stream write that failed on the connection (dropped, timed out, Redis restarting) or met a cluster
/// failing over, for about ten seconds: the multiplexer reconnects, or a replica takes over, meanwhile. Safe because every write is fenced and numbered, so a retried
/// batch that had in fact been applied is not applied twice.
/// </summary>
internal sealed class RedisWriteRetry(TimeProvider time, ILoggerFactory loggers)
{
    public ResiliencePipeline Pipeline { get; } = new ResiliencePipelineBuilder { TimeProvider = time }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<RedisConnectionException>().Handle<RedisTimeoutException>().Handle<RedisServerException>(RedisFailover.IsTransient),
            MaxRetryAttempts = 10,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(50),
            MaxDelay = TimeSpan.FromSeconds(2),
        })
        .ConfigureTelemetry(ResilienceTelemetry.Quiet(new TelemetryOptions { LoggerFactory = loggers }))
        .Build();
}
