using System.Text;
using System.Text.Json;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>
/// A whole answer gathered from its envelopes (text, reasoning, tool calls), written as OpenAI's
/// <c>message</c>: <c>content</c> null when the answer is only tool calls, as OpenAI answers then.
/// </summary>
internal sealed class GatheredAnswer
{
    private readonly StringBuilder _text = new();
    private readonly List<(string Id, string Name, StringBuilder Arguments)> _calls = [];
    private StringBuilder? _reasoning;

    public void Add(in StreamItem item)
    {
        var envelope = item.Envelope.Span;
        switch (item.Kind)
        {
            case StreamItemKind.Token:
                _text.Append(EnvelopeFields.String(envelope, "text"u8));
                break;
            case StreamItemKind.Reasoning:
                (_reasoning ??= new()).Append(EnvelopeFields.String(envelope, "text"u8));
                break;
            case StreamItemKind.ToolCall:
                var fragment = ToolCallFragment.Read(envelope);
                if (fragment.Index == _calls.Count && fragment.Name is not null)
                {
                    _calls.Add((fragment.Id ?? "", fragment.Name, new StringBuilder()));
                }

                if (fragment.Index < _calls.Count)
                {
                    _calls[fragment.Index].Arguments.Append(fragment.Arguments);
                }

                break;
        }
    }

    public void WriteMessage(Utf8JsonWriter json)
    {
        json.WriteStartObject("message"u8);
        json.WriteString("role"u8, "assistant"u8);
        if (_calls.Count > 0 && _text.Length == 0)
        {
            json.WriteNull("content"u8);
        }
        else
        {
            json.WriteString("content"u8, _text.ToString());
        }

        json.WriteNull("refusal"u8);
        if (_reasoning is not null)
        {
            json.WriteString("reasoning_content"u8, _reasoning.ToString());
        }

        if (_calls.Count > 0)
        {
            json.WriteStartArray("tool_calls"u8);
            foreach (var (id, name, arguments) in _calls)
            {
                json.WriteStartObject();
                json.WriteString("id"u8, id);
                json.WriteString("type"u8, "function"u8);
                json.WriteStartObject("function"u8);
                json.WriteString("name"u8, name);
                json.WriteString("arguments"u8, arguments.ToString());
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
    }
}
