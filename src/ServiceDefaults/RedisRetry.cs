using Polly;
using Polly.Retry;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// What counts as a Redis blip, and the retry through one. The services retry with budgets of their own: both last
/// about ten seconds, the time the multiplexer needs to reconnect or a cluster's replica to take over, but the
/// worker's writes are fenced and numbered, so a retry never appends twice and may start sooner and wait longer
/// between attempts (50 ms to 2 s); the API's reads are on a client's path, so its waits stop at 1 s and a client's
/// stream moves on within a second of Redis answering again.
/// </summary>
public static class RedisRetry
{
    /// <summary>The connection failed, a command timed out, or a cluster is failing over: Redis may answer again in a moment.</summary>
    public static bool IsTransient(Exception exception) =>
        exception is RedisConnectionException or RedisTimeoutException || RedisFailover.IsTransient(exception);

    /// <summary>An exponential, jittered retry of <see cref="IsTransient"/> failures: <paramref name="delay"/>, doubling up to <paramref name="maxDelay"/>.</summary>
    public static RetryStrategyOptions Options(int maxRetryAttempts, TimeSpan delay, TimeSpan maxDelay) => new()
    {
        ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
        MaxRetryAttempts = maxRetryAttempts,
        BackoffType = DelayBackoffType.Exponential,
        UseJitter = true,
        Delay = delay,
        MaxDelay = maxDelay,
    };
}
