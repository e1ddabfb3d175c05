using System.Text.Json;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>A <c>tool_call</c> envelope's payload, read in one pass: id and name are set in a call's first fragment only.</summary>
internal readonly record struct ToolCallFragment(int Index, string? Id, string? Name, string Arguments)
{
    public static ToolCallFragment Read(ReadOnlySpan<byte> envelope)
    {
        var reader = new Utf8JsonReader(envelope);
        int index = 0;
        string? id = null, name = null, arguments = null;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 2)
            {
                continue;
            }

            if (reader.ValueTextEquals("index"u8) && reader.Read())
            {
                index = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : 0;
            }
            else if (reader.ValueTextEquals("id"u8) && reader.Read())
            {
                id = reader.GetString();
            }
            else if (reader.ValueTextEquals("name"u8) && reader.Read())
            {
                name = reader.GetString();
            }
            else if (reader.ValueTextEquals("arguments"u8) && reader.Read())
            {
                arguments = reader.GetString();
            }
        }

        return new(index, id, name, arguments ?? "");
    }

    /// <summary>OpenAI's tool call: <c>{"index", "id", "type": "function", "function": {"name", "arguments"}}</c>, id, type and name in the first fragment only.</summary>
    public void WriteDelta(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteNumber("index"u8, Index);
        if (Id is not null)
        {
            json.WriteString("id"u8, Id);
            json.WriteString("type"u8, "function"u8);
        }

        json.WriteStartObject("function"u8);
        if (Name is not null)
        {
            json.WriteString("name"u8, Name);
        }

        json.WriteString("arguments"u8, Arguments);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
