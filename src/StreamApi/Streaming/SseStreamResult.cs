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
/// Streams a token stream to one client as SSE, one flush per batch read from Redis. It ends after the
/// <c>end</c> event, or at once when the client goes away.
/// </summary>
internal sealed class SseStreamResponder(StreamSessions sessions, StreamApiTelemetry telemetry, ILogger<SseStreamResponder> logger)
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

        await using var session = await sessions.OpenAsync(stream.Id, stream.ClientSlot);
        await WriteEventsAsync(response.BodyWriter, stream, session, cancellationToken);
    }

    private async Task WriteEventsAsync(PipeWriter writer, SseStreamResult stream, StreamSession session, CancellationToken cancellationToken)
    {
        var sawToken = stream.AfterId is not null;
        try
        {
            await writer.FlushAsync(cancellationToken);
            var progress = new TailProgress();
            await foreach (var batch in session.TailAsync(stream.AfterId, progress, cancellationToken))
            {
                if (batch.Length == 0)
                {
                    SseWriter.WriteHeartbeat(writer);
                }

                var sawEnd = false;
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
                    await session.MarkEndedAsync();
                    StreamApiTelemetry.EndSent(TokenStreamTailer.EndReason(batch[^1]));
                }

                // Backpressure: a slow client makes this wait, so the tailer reads from Redis at the client's pace.
                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }

            if (progress.EndedBefore)
            {
                await session.MarkEndedAsync();
            }
            else if (!session.Ended)
            {
                // The stream expired or was removed under us: the contract still promises error then end.
                await WriteLocalEndAsync(writer, "stream_lost", "The token stream is no longer available.", cancellationToken);
            }
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
    }

    private static async Task WriteLocalEndAsync(PipeWriter writer, string code, string message, CancellationToken cancellationToken)
    {
        SseWriter.WriteLocal(writer, "error"u8, Envelopes.Error(code, message, retryable: true));
        SseWriter.WriteLocal(writer, "end"u8, Envelopes.End(EndReasons.Error, 0));
        await writer.FlushAsync(cancellationToken);
    }
}
