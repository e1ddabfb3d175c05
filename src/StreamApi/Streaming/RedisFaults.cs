using Polly;
using StackExchange.Redis;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Redis out of reach, as the API meets it: idempotent reads are retried through a blip, and requests that need
/// Redis while it is gone are refused with 503 and <c>Retry-After</c> rather than failing with 500.
/// </summary>
internal static class RedisFaults
{
    /// <summary>The retry of idempotent Redis calls (reads, lease renewals): about ten seconds, then the caller gives up.</summary>
    public const string RetryPipeline = "redis-idempotent";

    public static readonly RequestFault Unavailable = new(StatusCodes.Status503ServiceUnavailable, "Redis unavailable",
        "The stream store cannot be reached right now; retry shortly.", "redis_unavailable");

    // On a client's path: waits stop at 1 s, so a stream moves on within a second of Redis answering again.
    public static IServiceCollection AddRedisRetry(this IServiceCollection services) =>
        services.AddResiliencePipeline(RetryPipeline, static pipeline => pipeline.AddRetry(
            RedisRetry.Options(maxRetryAttempts: 14, delay: TimeSpan.FromMilliseconds(100), maxDelay: TimeSpan.FromSeconds(1))));

    /// <summary>
    /// Answers <see cref="Unavailable"/>, rendered by <paramref name="render"/>, when Redis is not connected (at once,
    /// without waiting for a command to time out) or an endpoint's call to it fails for want of a connection.
    /// </summary>
    public static TBuilder RefuseWhileRedisIsUnreachable<TBuilder>(this TBuilder builder, Func<RequestFault, IResult> render)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            if (context.HttpContext.RequestServices.GetRequiredService<IConnectionMultiplexer>().IsConnected)
            {
                try
                {
                    return await next(context);
                }
                catch (Exception ex) when (RedisRetry.IsTransient(ex))
                {
                    Log.RequestRefusedRedisUnreachable(context.HttpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RedisFaults)), ex);
                }
            }

            context.HttpContext.Response.Headers.RetryAfter = RequestFault.RetryAfterSeconds;
            return render(Unavailable);
        });
}
