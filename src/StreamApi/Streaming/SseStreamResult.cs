using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>The result of a stream endpoint: one request's token stream, as SSE, from after <see cref="AfterId"/>.</summary>
/// <param name="ClientSlot">The client whose concurrent-stream slot this response holds, released when it ends.</param>
internal sealed record SseStreamResult(string Id, string? AfterId, long StartTimestamp, string? ClientSlot) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext) =>
        httpContext.RequestServices.GetRequiredService<SseStreamResponder>().RespondAsync(httpContext, this);
}

/// <summary>
/// Streams a token stream to one client, one flush per batch read from Redis. It ends after the <c>end</c>
/// event, or at once when the client goes away; while it runs the client counts as attached, and when the
/// last client of a stream leaves, the disconnect grace starts.
/// </summary>
internal sealed class SseStreamResponder(
    TokenStreamTailer tailer,
    StreamControl control,
    DisconnectGraceWatcher graceWatcher,
    StreamApiTelemetry telemetry,
    ILogger<SseStreamResponder> logger)
{
    public async Task RespondAsync(HttpContext context, SseStreamResult stream)
    {
        var response = context.Response;
        var cancellationToken = context.RequestAborted;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.Headers.Location = $"/infer/stream/{stream.Id}";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var attached = await TryAttachAsync(stream.Id);
        var slot = new ClientSlot(control, stream.ClientSlot, stream.Id, logger);
        var sawEnd = false;
        try
        {
            sawEnd = await WriteEventsAsync(response.BodyWriter, stream, slot, cancellationToken);
        }
        finally
        {
            if (attached)
            {
                await DetachAsync(stream.Id, scheduleGrace: !sawEnd);
            }

            await slot.ReleaseAsync();
        }
    }

    /// <summary>Writes events until the end (returns true) or until the client leaves or the stream is lost (false).</summary>
    private async Task<bool> WriteEventsAsync(PipeWriter writer, SseStreamResult stream, ClientSlot slot, CancellationToken cancellationToken)
    {
        var sawEnd = false;
        var sawToken = stream.AfterId is not null;
        try
        {
            await writer.FlushAsync(cancellationToken);
            var progress = new TailProgress();
            await foreach (var batch in tailer.TailAsync(stream.Id, stream.AfterId, progress, cancellationToken))
            {
                if (batch.Length == 0)
                {
                    SseWriter.WriteHeartbeat(writer);
                }

                foreach (var entry in batch)
                {
                    var name = SseWriter.WriteEntry(writer, entry);
                    if (!sawToken && name == EventNames.Token)
                    {
                        sawToken = true;
                        telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(stream.StartTimestamp));
                    }

                    sawEnd |= name == EventNames.End;
                }

                if (sawEnd)
                {
                    // The stream is over once its end is written: free the client's slot before it can see the end.
                    await slot.ReleaseAsync();
                }

                // Backpressure: a slow client makes this wait, so the tailer reads from Redis at the client's pace.
                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return sawEnd;
                }
            }

            sawEnd |= progress.EndedBefore;
            if (!sawEnd)
            {
                // The stream expired or was removed under us: the contract still promises error then end.
                await WriteLocalEndAsync(writer, "stream_lost", "The token stream is no longer available.", cancellationToken);
            }

            return sawEnd;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.ClientDisconnected(logger, stream.Id);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            Log.TailFailed(logger, ex, stream.Id);
            await WriteLocalEndAsync(writer, "stream_unavailable", "The token stream could not be read; retry with Last-Event-ID.", cancellationToken);
        }

        return false;
    }

    /// <summary>The client's concurrent-stream slot, released exactly once.</summary>
    private sealed class ClientSlot(StreamControl control, string? client, string streamId, ILogger logger)
    {
        private string? _client = client;

        /// <summary>Never throws: a slot that cannot be released expires with its stream's deadline.</summary>
        public async Task ReleaseAsync()
        {
            if (Interlocked.Exchange(ref _client, null) is { } held)
            {
                try
                {
                    await control.ReleaseClientSlotAsync(held, streamId);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    Log.AttachFailed(logger, ex, streamId);
                }
            }
        }
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

    private async Task DetachAsync(string id, bool scheduleGrace)
    {
        try
        {
            if (await control.DetachAsync(id) is { } epoch && scheduleGrace)
            {
                graceWatcher.Schedule(id, epoch);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.AttachFailed(logger, ex, id);
        }
    }

    private static async Task WriteLocalEndAsync(PipeWriter writer, string code, string message, CancellationToken cancellationToken)
    {
        SseWriter.WriteLocal(writer, "error"u8, Envelopes.Error(code, message, retryable: true));
        SseWriter.WriteLocal(writer, "end"u8, Envelopes.End(EndReasons.Error, 0));
        await writer.FlushAsync(cancellationToken);
    }
}
