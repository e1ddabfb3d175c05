using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Cancels a stream: by DELETE (or a WebSocket cancel) at once, or when its clients have been gone for the disconnect
/// grace (<see cref="DisconnectGraceWatcher"/>). One script sets the cancelled flag and tells the workers, so a worker
/// that picks the request up later still sees it.
/// </summary>
internal sealed class StreamCancellation(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    /// <summary>Cancels stream <paramref name="id"/>; with <paramref name="key"/>, only a stream that key created (another's is not found).</summary>
    public Task<CancelScripts.Reply> CancelAsync(string id, string? key, CancellationToken cancellationToken) =>
        RunAsync(id, RedisValue.EmptyString, key, cancellationToken);

    /// <summary>Cancels only if the stream is abandoned (no live lease, the last gone for the grace) and has not ended.</summary>
    public Task<CancelScripts.Reply> CancelIfAbandonedAsync(string id, CancellationToken cancellationToken) =>
        RunAsync(id, (long)options.CurrentValue.DisconnectGrace.TotalMilliseconds, key: null, cancellationToken);

    private async Task<CancelScripts.Reply> RunAsync(string id, RedisValue graceMilliseconds, string? key, CancellationToken cancellationToken)
    {
        var ttl = (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds;
        var reply = await redis.GetDatabase().ScriptEvaluateAsync(CancelScripts.Cancel, CancelScripts.Keys(id),
            CancelScripts.Arguments(id, graceMilliseconds, ttl, key)).WaitAsync(cancellationToken);
        return (CancelScripts.Reply)(int)reply;
    }
}
