using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>A message from the client, before its payload is read.</summary>
internal sealed class ClientMessage
{
    public const string RequestType = "inference.request";
    public const string CancelType = "inference.cancel";

    public string? Type { get; set; }

    public string? RequestId { get; set; }

    public string? StreamId { get; set; }

    // Read in a second step, so a bad payload is answered on its request (error, then end) with its tag.
    public JsonElement? Payload { get; set; }
}

// The payload is read in full whatever its nesting, so a request nested too deeply is answered on its request_id by
// the body's own reader (BodyJson) rather than as a malformed message; the frame limit bounds the work.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, MaxDepth = 1 << 20)]
[JsonSerializable(typeof(ClientMessage))]
internal sealed partial class SocketJsonContext : JsonSerializerContext;

/// <summary>
/// The tags of outgoing messages: a stored envelope <c>{"type":...,"payload":...}</c> becomes
/// <c>{"stream_id":...,"request_id":...,"type":...,"payload":...}</c> by writing a per-request prefix in front of
/// the envelope's bytes after its opening brace; the envelope is never parsed.
/// </summary>
internal static class MessagePrefixes
{
    public static readonly ReadOnlyMemory<byte> Untagged = For(null, null);

    /// <summary><c>{"stream_id":...,"request_id":...,</c>, ready to take an envelope without its <c>{</c>.</summary>
    public static byte[] For(string? streamId, string? requestId)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            WriteStringOrNull(writer, "stream_id"u8, streamId);
            WriteStringOrNull(writer, "request_id"u8, requestId);
        }

        buffer.Write(","u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes one message, <paramref name="prefix"/> then the envelope; false (nothing written) when the envelope is not a JSON object.</summary>
    public static bool TryWriteMessage(IBufferWriter<byte> buffer, ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> envelope)
    {
        if (envelope.Length < 2 || envelope[0] != (byte)'{' || envelope[^1] != (byte)'}')
        {
            return false;
        }

        buffer.Write(prefix);
        buffer.Write(envelope[1..]);
        return true;
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, Envelopes.Sanitize(value));
        }
    }
}
