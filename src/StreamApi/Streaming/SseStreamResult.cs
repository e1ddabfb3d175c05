using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Streams one request's token stream to the client as SSE, one flush per batch read from Redis. It ends
/// after the <c>end</c> event, or at once when the client goes away.
/// </summary>
internal sealed class SseStreamResult(
    string id,
    string? afterId,
    long startTimestamp,
    TokenStreamTailer tailer,
    StreamApiTelemetry telemetry,
    ILogger logger) : IResult
{
    public string Id => id;

    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        var cancellationToken = context.RequestAborted;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.Headers.Location = $"/infer/stream/{id}";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var writer = response.BodyWriter;
        var sawEnd = false;
        var sawToken = afterId is not null;
        try
        {
            await response.StartAsync(cancellationToken);
            await foreach (var batch in tailer.TailAsync(id, afterId, cancellationToken))
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
                        telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(startTimestamp));
                    }

                    sawEnd |= name == EventNames.End;
                }

                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }

            if (!sawEnd)
            {
                // The stream expired or was removed under us: the contract still promises error then end.
                await WriteLocalEndAsync(writer, "stream_lost", "The token stream is no longer available.", cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.ClientDisconnected(logger, id);
        }
        catch (RedisException ex) when (!cancellationToken.IsCancellationRequested)
        {
            Log.TailFailed(logger, ex, id);
            await WriteLocalEndAsync(writer, "stream_unavailable", "The token stream could not be read; retry with Last-Event-ID.", cancellationToken);
        }
    }

    private static async Task WriteLocalEndAsync(System.IO.Pipelines.PipeWriter writer, string code, string message, CancellationToken cancellationToken)
    {
        SseWriter.WriteLocal(writer, "error"u8, Envelopes.Error(code, message, retryable: true));
        SseWriter.WriteLocal(writer, "end"u8, Envelopes.End(EndReasons.Error, 0));
        await writer.FlushAsync(cancellationToken);
    }
}
