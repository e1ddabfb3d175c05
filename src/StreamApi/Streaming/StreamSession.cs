using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Opens <see cref="StreamSession"/>s: one per client following one stream, whatever the protocol.</summary>
internal sealed class StreamSessions(
    TokenStreamTailer tailer,
    StreamControl control,
    DisconnectGraceWatcher graceWatcher,
    StreamApiTelemetry telemetry,
    ILogger<StreamSessions> logger)
{
    /// <summary>Attaches a client to stream <paramref name="id"/>; <paramref name="clientSlot"/> is the slot its start took, if any.</summary>
    public async Task<StreamSession> OpenAsync(string id, string? clientSlot)
    {
        var session = new StreamSession(this, id, clientSlot);
        telemetry.StreamOpened();
        try
        {
            await control.AttachAsync(id);
            session.Attached = true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Without the count the stream is never thought abandoned; it still ends by its own limits.
            Log.AttachFailed(logger, ex, id);
        }

        return session;
    }

    internal TokenStreamTailer Tailer => tailer;

    internal async Task CloseAsync(StreamSession session)
    {
        telemetry.StreamClosed();
        if (session.Attached)
        {
            try
            {
                if (await control.DetachAsync(session.Id) is { } epoch && !session.Ended)
                {
                    graceWatcher.Schedule(session.Id, epoch);
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                Log.AttachFailed(logger, ex, session.Id);
            }
        }

        await ReleaseSlotAsync(session);
    }

    internal async Task ReleaseSlotAsync(StreamSession session)
    {
        if (session.TakeSlot() is { } client)
        {
            try
            {
                await control.ReleaseClientSlotAsync(client, session.Id);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // The slot drops out by itself at the stream's deadline.
                Log.AttachFailed(logger, ex, session.Id);
            }
        }
    }
}

/// <summary>
/// One client following one stream. While open, the client counts as attached; disposing it detaches, and
/// when it was the stream's last client before the end, the disconnect grace starts. The client's
/// concurrent-stream slot is released when the end is seen or at disposal, whichever comes first.
/// </summary>
internal sealed class StreamSession(StreamSessions owner, string id, string? clientSlot) : IAsyncDisposable
{
    private string? _clientSlot = clientSlot;

    public string Id => id;

    internal bool Attached { get; set; }

    /// <summary>True once this client has received the stream's end (or resumed after it).</summary>
    public bool Ended { get; private set; }

    /// <summary>Batches of entries after <paramref name="afterId"/>; see <see cref="TokenStreamTailer.TailAsync"/>.</summary>
    public IAsyncEnumerable<StreamEntry[]> TailAsync(string? afterId, TailProgress progress, CancellationToken cancellationToken) =>
        owner.Tailer.TailAsync(id, afterId, progress, cancellationToken);

    /// <summary>The stream is over for this client: no grace check, and its slot is free before it is told.</summary>
    public Task MarkEndedAsync()
    {
        Ended = true;
        return owner.ReleaseSlotAsync(this);
    }

    internal string? TakeSlot() => Interlocked.Exchange(ref _clientSlot, null);

    public async ValueTask DisposeAsync() => await owner.CloseAsync(this);
}
