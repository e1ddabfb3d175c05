using System.Buffers;
using System.IO.Pipelines;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Writes token-stream entries as SSE frames straight into the response pipe: the envelope bytes stored by
/// the worker are copied, not parsed or re-encoded.
/// </summary>
internal static class SseWriter
{
    private static readonly SearchValues<byte> LineBreaks = SearchValues.Create("\r\n"u8);

    /// <summary>Writes one entry; returns its event name, or null when the entry was not sendable.</summary>
    public static RedisValue WriteEntry(PipeWriter writer, StreamEntry entry)
    {
        var name = entry[StreamFields.Event];
        var data = entry[StreamFields.Data];
        if (name.IsNull || data.IsNull)
        {
            return RedisValue.Null;
        }

        ReadOnlyMemory<byte> payload = data;
        // Envelopes are JSON written with escaping, so this holds; a corrupt entry must still not split the frame.
        if (payload.Span.ContainsAny(LineBreaks))
        {
            return RedisValue.Null;
        }

        writer.Write("id: "u8);
        writer.Write(((ReadOnlyMemory<byte>)entry.Id).Span);
        writer.Write("\nevent: "u8);
        writer.Write(((ReadOnlyMemory<byte>)name).Span);
        writer.Write("\ndata: "u8);
        writer.Write(payload.Span);
        writer.Write("\n\n"u8);
        return name;
    }

    /// <summary>An event the API makes itself (no <c>id:</c>: it is not in the token stream).</summary>
    public static void WriteLocal(PipeWriter writer, ReadOnlySpan<byte> name, ReadOnlySpan<byte> envelope)
    {
        writer.Write("event: "u8);
        writer.Write(name);
        writer.Write("\ndata: "u8);
        writer.Write(envelope);
        writer.Write("\n\n"u8);
    }

    public static void WriteHeartbeat(PipeWriter writer) => writer.Write(": ping\n\n"u8);
}
