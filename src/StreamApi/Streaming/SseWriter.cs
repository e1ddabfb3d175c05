using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Server-Sent Events: each item as a frame written straight into the response pipe, the envelope bytes stored
/// by the worker copied, not parsed or re-encoded; one flush per batch.
/// </summary>
internal static class SseWriter
{
    private static readonly SearchValues<byte> LineBreaks = SearchValues.Create("\r\n"u8);

    /// <summary>
    /// Writes one item: <c>id:</c> (stored events only), <c>event:</c> and <c>data:</c>, or a <c>: ping</c> comment.
    /// False, writing nothing, for an envelope that would break the frame.
    /// </summary>
    public static bool Write(PipeWriter writer, in StreamItem item)
    {
        if (item.Kind == StreamItemKind.Heartbeat)
        {
            writer.Write(": ping\n\n"u8);
            return true;
        }

        // Envelopes are JSON written with escaping, so this holds; a corrupt entry must still not split the frame.
        if (item.Envelope.Span.ContainsAny(LineBreaks))
        {
            return false;
        }

        if (!item.Id.IsEmpty)
        {
            writer.Write("id: "u8);
            writer.Write(item.Id.Span);
            writer.Write("\n"u8);
        }

        writer.Write("event: "u8);
        writer.Write(item.Name.Span);
        writer.Write("\ndata: "u8);
        writer.Write(item.Envelope.Span);
        writer.Write("\n\n"u8);
        return true;
    }

    /// <summary>Writes each batch with <paramref name="write"/> and flushes it once, until the stream or the client ends.</summary>
    public static async Task WriteAsync(HttpContext context, IAsyncEnumerable<StreamBatch> batches, ItemWriter write)
    {
        var response = context.Response;
        var cancellationToken = context.RequestAborted;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var writer = response.BodyWriter;
        try
        {
            await writer.FlushAsync(cancellationToken);
            await foreach (var batch in batches.WithCancellation(cancellationToken))
            {
                foreach (var item in batch)
                {
                    write(writer, item);
                }

                // Backpressure: a slow client makes this wait, so the follower reads from Redis at the client's pace.
                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client left; the follower has detached it.
        }
    }

    public delegate void ItemWriter(PipeWriter writer, in StreamItem item);
}
