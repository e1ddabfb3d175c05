using System.Collections.Concurrent;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Generation;

/// <summary>
/// The generations this worker runs, by request id, and the one subscription that cancels them when the
/// API publishes a cancellation (DELETE, or no client attached for the disconnect grace).
/// </summary>
internal sealed class CancellationRegistry(IConnectionMultiplexer redis)
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);

    public async Task SubscribeAsync(CancellationToken cancellationToken) =>
        await redis.GetSubscriber().SubscribeAsync(RedisKeys.Cancellations, OnCancel).WaitAsync(cancellationToken);

    public Registration Register(string id, CancellationTokenSource source)
    {
        _running[id] = source;
        return new Registration(this, id);
    }

    private void OnCancel(RedisChannel channel, RedisValue message)
    {
        if (_running.TryGetValue(message.ToString(), out var source))
        {
            source.Cancel();
        }
    }

    public readonly struct Registration(CancellationRegistry registry, string id) : IDisposable
    {
        public void Dispose() => registry._running.TryRemove(id, out _);
    }
}
