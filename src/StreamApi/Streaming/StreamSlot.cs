using StackExchange.Redis;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// A lease on one of a client's concurrent-stream slots, handed out by <see cref="StreamStarter"/>. A generation's
/// slot (<paramref name="attachMember"/> null) counts until the stream ends, not until its client leaves: disposing
/// it frees nothing, the worker frees it when it writes the end, and the follower when it reads the end. An
/// attachment's slot is freed when its holder disposes it or the end is read. Either is freed at most once here.
/// </summary>
internal sealed class StreamSlot(ClientSlots slots, string client, string id, string? attachMember, ILogger logger) : IAsyncDisposable
{
    private int _released;

    /// <summary>The attach lease taken with the stream itself (a new generation's), which the follower holds rather than take another.</summary>
    public AttachLease? Attached { get; init; }

    /// <summary>The start envelope written with the stream itself (a new generation's), for an ending made before it was read.</summary>
    public byte[]? Start { get; init; }

    /// <summary>The stream ended: frees the attachment, and the client's slot of the generation itself if it holds one.</summary>
    public Task ReleaseAtEndAsync() => ReleaseAsync(attachMember is null ? [id] : [id, attachMember]);

    /// <summary>Frees a generation's slot before anything was queued for it (a refusal, or a failure to queue).</summary>
    public Task ReleaseUnqueuedAsync() => ReleaseAsync([id]);

    public async ValueTask DisposeAsync()
    {
        if (attachMember is not null)
        {
            await ReleaseAsync([attachMember]);
        }
    }

    private async Task ReleaseAsync(RedisValue[] members)
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        try
        {
            await slots.ReleaseAsync(client, members);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The slot drops out by itself at its deadline.
            Log.SlotReleaseFailed(logger, ex, id);
        }
    }
}
