using System.Text.Json;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Reads single fields out of stored envelopes, for front ends that re-shape them (names are unique per envelope type).</summary>
internal static class EnvelopeFields
{
    public static string? String(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> name)
    {
        var reader = new Utf8JsonReader(envelope);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(name) && reader.Read())
            {
                return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }
        }

        return null;
    }

    public static int Int(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> name)
    {
        var reader = new Utf8JsonReader(envelope);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(name) && reader.Read())
            {
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : 0;
            }
        }

        return 0;
    }
}
