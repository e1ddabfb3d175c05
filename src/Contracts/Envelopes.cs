using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace VixAspire.Contracts;

/// <summary>
/// Writes the typed JSON envelopes (the README's Events table) as UTF-8 bytes. The worker builds each
/// envelope once and stores it in the token stream, so the API copies bytes to the client without
/// parsing them. JSON escaping is what keeps any token text inside one SSE <c>data:</c> line.
/// </summary>
public static class Envelopes
{
    // Relaxed escaping keeps non-ASCII text readable; control characters (CR, LF, NUL) are still escaped.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic] private static ArrayBufferWriter<byte>? _threadBuffer;
    [ThreadStatic] private static Utf8JsonWriter? _threadWriter;

    public static byte[] Start(string id, string model) => Write((id, model), static (w, s) =>
    {
        w.WriteString("id"u8, s.id);
        w.WriteString("model"u8, s.model);
    }, "inference.start"u8);

    public static byte[] Token(string text, int index) => Write((text, index), static (w, s) =>
    {
        w.WriteString("text"u8, Sanitize(s.text));
        w.WriteNumber("index"u8, s.index);
    }, "inference.token"u8);

    public static byte[] Error(string code, string message, bool retryable) => Write((code, message, retryable), static (w, s) =>
    {
        w.WriteString("code"u8, s.code);
        w.WriteString("message"u8, Sanitize(s.message));
        w.WriteBoolean("retryable"u8, s.retryable);
    }, "inference.error"u8);

    /// <summary>A tool call's fragment: <paramref name="id"/> and <paramref name="name"/> in its first fragment only (null after).</summary>
    public static byte[] ToolCall(int index, string? id, string? name, string arguments) => Write((index, id, name, arguments), static (w, s) =>
    {
        w.WriteNumber("index"u8, s.index);
        if (s.id is not null)
        {
            w.WriteString("id"u8, Sanitize(s.id));
        }

        if (s.name is not null)
        {
            w.WriteString("name"u8, Sanitize(s.name));
        }

        w.WriteString("arguments"u8, Sanitize(s.arguments));
    }, "inference.tool_call"u8);

    public static byte[] Reasoning(string text) => Write(text, static (w, s) => w.WriteString("text"u8, Sanitize(s)), "inference.reasoning"u8);

    public static byte[] End(string reason, int outputTokens) => End(reason, outputTokens, inputTokens: null);

    /// <summary>The end; <c>input_tokens</c> only when the provider reported it.</summary>
    public static byte[] End(string reason, int outputTokens, long? inputTokens) => Write((reason, outputTokens, inputTokens), static (w, s) =>
    {
        w.WriteString("reason"u8, s.reason);
        w.WriteStartObject("usage"u8);
        if (s.inputTokens is { } input)
        {
            w.WriteNumber("input_tokens"u8, input);
        }

        w.WriteNumber("output_tokens"u8, s.outputTokens);
        w.WriteEndObject();
    }, "inference.end"u8);

    /// <summary>Replaces lone UTF-16 surrogates (which JSON cannot carry as UTF-8) with U+FFFD.</summary>
    public static string Sanitize(string text)
    {
        var span = text.AsSpan();
        var bad = IndexOfInvalidSurrogate(span);
        if (bad < 0)
        {
            return text;
        }

        return string.Create(text.Length, text, static (dest, src) =>
        {
            src.AsSpan().CopyTo(dest);
            for (var i = 0; i < dest.Length; i++)
            {
                if (char.IsHighSurrogate(dest[i]) && i + 1 < dest.Length && char.IsLowSurrogate(dest[i + 1]))
                {
                    i++;
                }
                else if (char.IsSurrogate(dest[i]))
                {
                    dest[i] = '\uFFFD';
                }
            }
        });
    }

    private static int IndexOfInvalidSurrogate(ReadOnlySpan<char> span)
    {
        for (var i = 0; i < span.Length; i++)
        {
            if (!char.IsSurrogate(span[i]))
            {
                continue;
            }

            if (char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
            {
                i++;
                continue;
            }

            return i;
        }

        return -1;
    }

    private static byte[] Write<TState>(TState state, Action<Utf8JsonWriter, TState> payload, ReadOnlySpan<byte> type)
    {
        var buffer = _threadBuffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        var writer = _threadWriter ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);

        writer.WriteStartObject();
        writer.WriteString("type"u8, type);
        writer.WriteStartObject("payload"u8);
        payload(writer, state);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
