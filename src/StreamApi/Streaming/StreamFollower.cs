using System.Diagnostics;
using System.Runtime.CompilerServices;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// One client's view of one stream, whatever the protocol: it attaches the client, reads the token stream as the
/// worker appends to it, and ends with exactly one end. Front ends only spell its items in their own format.
/// </summary>
internal sealed class StreamFollower(
    TokenStreamTailer tailer,
    StreamControl control,
    DisconnectGraceWatcher graceWatcher,
    StreamApiTelemetry telemetry,
    ILogger<StreamFollower> logger)
{
    private static readonly byte[] LostError = Envelopes.Error("stream_lost", "The token stream is no longer available.", retryable: true);

    /// <summary>
    /// Yields stream <paramref name="id"/> after <paramref name="afterId"/> (from the start when null), one batch per
    /// read from Redis, with a heartbeat batch when an interval passes with nothing new. The last batch holds the end:
    /// the stream's own, or an error and end made here when the stream vanished (<c>stream_lost</c>) or cannot be
    /// read (<c>stream_unavailable</c>). A client resuming after the end gets nothing.
    /// </summary>
    /// <remarks>
    /// While enumerated the client counts as attached; leaving before the end starts the disconnect grace when it
    /// was the stream's last client. <paramref name="slot"/> is released as soon as the end is read, so it is free
    /// before the client is told. Time to first token runs from <paramref name="startTimestamp"/> (not for resumes).
    /// </remarks>
    public async IAsyncEnumerable<StreamBatch> FollowAsync(string id, string? afterId, long startTimestamp, StreamSlot? slot,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        telemetry.StreamOpened();
        var attached = await TryAttachAsync(id);
        var ended = false;
        try
        {
            var progress = new TailProgress();
            var sawToken = afterId is not null;
            var unreadable = false;
            await using var batches = tailer.TailAsync(id, afterId, progress, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await batches.MoveNextAsync())
                    {
                        break;
                    }
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException && !cancellationToken.IsCancellationRequested)
                {
                    Log.TailFailed(logger, ex, id);
                    unreadable = true;
                    break;
                }

                var entries = batches.Current;
                if (entries.Length == 0)
                {
                    yield return StreamBatch.Heartbeat;
                    continue;
                }

                if (!sawToken && Array.Exists(entries, e => StreamItem.KindOf(e[StreamFields.Event]) == StreamItemKind.Token))
                {
                    sawToken = true;
                    telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(startTimestamp));
                }

                if (TokenStreamTailer.IsEnd(entries[^1]))
                {
                    ended = await EndAsync(slot, TokenStreamTailer.EndReason(entries[^1]));
                }

                yield return new StreamBatch(entries);
            }

            if (progress.EndedBefore)
            {
                ended = await EndAsync(slot, reason: null);
            }
            else if (!ended)
            {
                StreamApiTelemetry.EndSent(EndReasons.Error);
                yield return StreamBatch.Ending(unreadable
                    ? Envelopes.Error("stream_unavailable", $"The token stream could not be read; resume it with GET /infer/stream/{id}.", retryable: true)
                    : LostError);
            }
        }
        finally
        {
            telemetry.StreamClosed();
            if (cancellationToken.IsCancellationRequested && !ended)
            {
                Log.ClientDisconnected(logger, id);
            }

            if (attached)
            {
                await DetachAsync(id, ended);
            }
        }
    }

    /// <summary>The stream is over for this client: no grace check, and its slot is free before it is told.</summary>
    private static async Task<bool> EndAsync(StreamSlot? slot, string? reason)
    {
        if (slot is not null)
        {
            await slot.DisposeAsync();
        }

        if (reason is not null)
        {
            StreamApiTelemetry.EndSent(reason);
        }

        return true;
    }

    private async Task<bool> TryAttachAsync(string id)
    {
        try
        {
            await control.AttachAsync(id);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Without the count the stream is never thought abandoned; it still ends by its own limits.
            Log.AttachFailed(logger, ex, id);
            return false;
        }
    }

    private async Task DetachAsync(string id, bool ended)
    {
        try
        {
            if (await control.DetachAsync(id) is { } epoch && !ended)
            {
                graceWatcher.Schedule(id, epoch);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.DetachFailed(logger, ex, id);
        }
    }
}
