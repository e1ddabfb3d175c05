using StackExchange.Redis;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// A lease on one of a client's concurrent-stream slots, handed out by <see cref="StreamStarter"/>. Whoever holds
/// it disposes it; the follower of the stream may release it earlier, when the client is sent the end. The slot
/// is released once, whichever comes first.
/// </summary>
internal sealed class StreamSlot(StreamControl control, string client, string id, ILogger logger) : IAsyncDisposable
{
    private int _released;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        try
        {
            await control.ReleaseClientSlotAsync(client, id);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The slot drops out by itself at the stream's deadline.
            Log.SlotReleaseFailed(logger, ex, id);
        }
    }
}
