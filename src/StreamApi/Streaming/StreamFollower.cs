using System.Diagnostics;
using System.Runtime.CompilerServices;
using Polly;
using Polly.Registry;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// One client's view of one stream, whatever the protocol: it attaches the client, reads the token stream as the
/// worker appends to it, and ends with exactly one end. Front ends only spell its items in their own format.
/// </summary>
internal sealed class StreamFollower(
    TokenStreamTailer tailer,
    StreamAttachments attachments,
    DisconnectGraceWatcher graceWatcher,
    ResiliencePipelineProvider<string> pipelines,
    IHostApplicationLifetime lifetime,
    StreamApiTelemetry telemetry,
    ILogger<StreamFollower> logger)
{
    /// <summary>How long a detach may hold up the end of a response (and so a shutdown); a lease not ended runs out.</summary>
    private static readonly TimeSpan DetachTimeout = TimeSpan.FromSeconds(2);

    private static readonly byte[] LostError = Envelopes.Error("stream_lost", "The token stream is no longer available.", retryable: true);

    private readonly ResiliencePipeline _retry = pipelines.GetPipeline(RedisFaults.RetryPipeline);

    /// <summary>
    /// Yields stream <paramref name="id"/> after <paramref name="afterId"/> (from the start when null), one batch per
    /// read from Redis, with a heartbeat batch when an interval passes with nothing new. The last batch holds the end:
    /// the stream's own, or an error and end made here when the stream vanished (<c>stream_lost</c>) or cannot be
    /// read (<c>stream_unavailable</c>). A client resuming after the end gets nothing. When the host stops, the
    /// sequence just stops, without an end, so that the client resumes on another replica.
    /// </summary>
    /// <remarks>
    /// While enumerated the client holds an attach lease; leaving before the end starts the disconnect grace when it
    /// was the stream's last client. <paramref name="slot"/> is released as soon as the end is read, so it is free
    /// before the client is told; a client that leaves earlier keeps a generation's slot taken until the worker ends it. Time to first token runs from <paramref name="startTimestamp"/> (not for resumes).
    /// </remarks>
    public async IAsyncEnumerable<StreamBatch> FollowAsync(string id, string? afterId, long startTimestamp, StreamSlot? slot,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        telemetry.StreamOpened();
        var stopping = lifetime.ApplicationStopping;
        using var following = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping);
        AttachLease? lease = null;
        var ended = false;
        try
        {
            lease = slot?.Attached ?? await TryAttachAsync(id, following.Token);
            var progress = new TailProgress();
            var sawToken = afterId is not null;
            // Whether the client has had any event: a resume has (its start), a new stream not until its first read.
            var begun = afterId is not null;
            var unreadable = false;
            var stopped = false;
            await using var batches = tailer.TailAsync(id, afterId, lease, progress, following.Token).GetAsyncEnumerator(following.Token);
            while (true)
            {
                try
                {
                    if (!await batches.MoveNextAsync())
                    {
                        break;
                    }
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException && !following.IsCancellationRequested)
                {
                    Log.TailFailed(logger, ex, id);
                    unreadable = true;
                    break;
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    Log.StreamClosedForShutdown(logger, id);
                    stopped = true;
                    break;
                }

                var entries = batches.Current;
                if (entries.Length == 0)
                {
                    yield return StreamBatch.Heartbeat;
                    continue;
                }

                if (!sawToken && Array.Exists(entries, e => StreamItem.IsAnswer(StreamItem.KindOf(e[StreamFields.Event]))))
                {
                    sawToken = true;
                    telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(startTimestamp));
                }

                begun = true;
                if (TokenStreamTailer.IsEnd(entries[^1]))
                {
                    ended = await EndAsync(slot, TokenStreamTailer.EndReason(entries[^1]));
                }

                yield return new StreamBatch(entries);
            }

            if (progress.ResumedAfterEnd)
            {
                ended = await EndAsync(slot, reason: null);
            }
            else if (!ended && !stopped)
            {
                StreamApiTelemetry.EndSent(EndReasons.Error);
                yield return StreamBatch.Ending(unreadable
                    ? Envelopes.Error("stream_unavailable", $"The token stream could not be read; resume it with GET /infer/stream/{id}.", retryable: true)
                    : LostError, begun ? null : slot?.Start);
            }
        }
        finally
        {
            telemetry.StreamClosed();
            if (cancellationToken.IsCancellationRequested && !ended)
            {
                Log.ClientDisconnected(logger, id);
            }

            // A stream that ended needs no detach: nothing is judged abandoned once it has its end, and the worker's
            // end gave the lease set the stream's short expiry. That spares one command per stream.
            if (lease is not null && !ended)
            {
                await DetachAsync(lease);
            }
        }
    }

    /// <summary>The stream is over for this client: no grace check, and its slot is free before it is told.</summary>
    private static async Task<bool> EndAsync(StreamSlot? slot, string? reason)
    {
        if (slot is not null)
        {
            await slot.ReleaseAtEndAsync();
        }

        if (reason is not null)
        {
            StreamApiTelemetry.EndSent(reason);
        }

        return true;
    }

    private async Task<AttachLease?> TryAttachAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            // Attaching again with the same member only moves its expiry, so a blip is retried.
            var lease = attachments.NewLease(id);
            await _retry.ExecuteAsync(static async (s, ct) => await s.attachments.AttachAsync(s.lease, ct), (attachments, lease), cancellationToken);
            return lease;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Without a lease the stream is never thought abandoned; it still ends by its own limits.
            Log.AttachFailed(logger, ex, id);
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client left or the host is stopping before the lease was taken; the tail ends at once.
            return null;
        }
    }

    private async Task DetachAsync(AttachLease lease)
    {
        using var timeout = new CancellationTokenSource(DetachTimeout);
        try
        {
            var last = await _retry.ExecuteAsync(static async (s, ct) => await s.attachments.DetachAsync(s.lease, ct), (attachments, lease), timeout.Token);
            if (last)
            {
                graceWatcher.Schedule(lease.StreamId);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException)
        {
            Log.DetachFailed(logger, ex, lease.StreamId);
        }
    }
}
