using System.Collections.Concurrent;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// This replica's one subscription to wake-ups (<see cref="WakeUps"/>): each message names the streams with new
/// entries that this replica follows, and the dispatcher sets the signal of every tail of those streams here. A tail
/// registers before its first read; the multiplexer subscribes again by itself after a reconnect.
/// </summary>
internal sealed class WakeDispatcher(IConnectionMultiplexer redis, ReplicaIdentity replica)
{
    private readonly ConcurrentDictionary<string, WakeSignal[]> _tails = new(StringComparer.Ordinal);
    private readonly Lock _subscribing = new();
    private Task? _subscribed;

    /// <summary>
    /// Wakes <paramref name="signal"/> for stream <paramref name="id"/> until the registration is disposed. Completes
    /// once the replica's subscription is in place; should Redis be unreachable, it is in place again when Redis is
    /// back (the tail's restore wake-up covers the gap).
    /// </summary>
    public async Task<IDisposable> RegisterAsync(string id, WakeSignal signal)
    {
        _tails.AddOrUpdate(id, static (_, s) => [s], static (_, tails, s) => [.. tails, s], signal);
        var registration = new Registration(this, id, signal);
        try
        {
            await EnsureSubscribedAsync();
        }
        catch (Exception ex) when (RedisRetry.IsTransient(ex))
        {
            // The handler is registered all the same: the multiplexer subscribes it when the connection is back.
        }

        return registration;
    }

    private Task EnsureSubscribedAsync()
    {
        lock (_subscribing)
        {
            if (_subscribed is null || _subscribed.IsFaulted || _subscribed.IsCanceled)
            {
                _subscribed = redis.GetSubscriber().SubscribeAsync(replica.WakeChannel, (_, message) => Wake(message));
            }

            return _subscribed;
        }
    }

    private void Wake(RedisValue message)
    {
        var ids = ((string?)message ?? "").AsSpan();
        var lookup = _tails.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var range in ids.Split(WakeUps.Separator))
        {
            if (lookup.TryGetValue(ids[range], out var tails))
            {
                foreach (var tail in tails)
                {
                    tail.Set();
                }
            }
        }
    }

    private void Unregister(string id, WakeSignal signal)
    {
        while (_tails.TryGetValue(id, out var tails))
        {
            var left = Array.FindAll(tails, t => t != signal);
            var done = left.Length == 0
                ? _tails.TryRemove(new KeyValuePair<string, WakeSignal[]>(id, tails))
                : _tails.TryUpdate(id, left, tails);
            if (done)
            {
                return;
            }
        }
    }

    private sealed class Registration(WakeDispatcher dispatcher, string id, WakeSignal signal) : IDisposable
    {
        public void Dispose() => dispatcher.Unregister(id, signal);
    }
}
