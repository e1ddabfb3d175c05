using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace VixAspire.Worker.Providers.Synthetic;

/// <summary>
/// What the synthetic model answers, as the updates to stream (the client paces them): after a tool result, text
/// that reports it; else the tool calls the request asks for; else JSON when the response format wants it; else
/// the deterministic words. The reasoning model puts a few reasoning fragments first.
/// </summary>
public static class SyntheticReply
{
    /// <summary>JSON answers are merged into at most this many fragments, so a large schema cannot mean thousands of delays.</summary>
    public const int MaxJsonFragments = 256;

    private const int MaxResultChars = 200;

    private static readonly JsonSerializerOptions Compact = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    public static IEnumerable<ChatResponseUpdate> Updates(IReadOnlyList<ChatMessage> messages, ChatOptions? options, bool reasoning)
    {
        var seed = SyntheticChatClient.Seed(messages);
        var maxTokens = options?.MaxOutputTokens ?? 128;
        var input = InputTokens(messages);

        var results = messages.Count > 0 ? messages[^1].Contents.OfType<FunctionResultContent>().ToList() : [];
        var calls = results.Count > 0 ? [] : SyntheticToolCaller.Calls(messages, options, seed);
        var json = options?.ResponseFormat as ChatResponseFormatJson;

        var thought = reasoning ? Words(Thought(messages, results, calls, json, seed, maxTokens)) : [];
        var answer = results.Count > 0 && json is null ? Text(Words(Report(messages, results)), maxTokens)
            : calls.Count > 0 ? ToolCalls(calls)
            : json is not null ? Text(JsonFragments(Json(json, results.Count > 0 ? Report(messages, results) : null, seed, maxTokens)), int.MaxValue)
            : Plain(seed, maxTokens);

        foreach (var fragment in thought)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, [new TextReasoningContent(fragment)]);
        }

        // OpenAI's convention: output tokens include the reasoning tokens.
        var output = thought.Count;
        foreach (var update in answer)
        {
            output += update.Contents[0] is FunctionCallContent call ? ArgumentTokens(call) : 1;
            if (update.FinishReason is not null)
            {
                update.Contents.Add(new UsageContent(new UsageDetails
                {
                    InputTokenCount = input,
                    OutputTokenCount = output,
                    ReasoningTokenCount = reasoning ? thought.Count : null,
                    TotalTokenCount = input + output,
                }));
            }

            yield return update;
        }
    }

    /// <summary>A deterministic count of the prompt's words: its text and its tool results.</summary>
    public static int InputTokens(IEnumerable<ChatMessage> messages)
    {
        var count = 0;
        foreach (var content in messages.SelectMany(m => m.Contents))
        {
            count += content switch
            {
                TextContent text => CountWords(text.Text),
                FunctionResultContent result => CountWords(ResultText(result)),
                FunctionCallContent call => 1 + (call.Arguments?.Count ?? 0),
                _ => 0,
            };
        }

        return count;
    }

    /// <summary>Splits compact JSON after its punctuation and at the spaces of its strings; only whole characters.</summary>
    public static List<string> JsonFragments(string json)
    {
        var fragments = new List<string>();
        var current = new StringBuilder();
        var inString = false;
        var escaped = false;
        foreach (var c in json)
        {
            if (inString)
            {
                if (c == ' ' && current.Length > 0)
                {
                    Flush();
                }

                current.Append(c);
                inString = escaped || c != '"';
                escaped = !escaped && c == '\\';
                continue;
            }

            if (c is '}' or ']')
            {
                Flush();
            }

            current.Append(c);
            inString = c == '"';
            if (c is '{' or '[' or ',' or ':' or '}' or ']')
            {
                Flush();
            }
        }

        Flush();
        if (fragments.Count <= MaxJsonFragments)
        {
            return fragments;
        }

        var size = (fragments.Count + MaxJsonFragments - 1) / MaxJsonFragments;
        return [.. fragments.Chunk(size).Select(chunk => string.Concat(chunk))];

        void Flush()
        {
            if (current.Length > 0)
            {
                fragments.Add(current.ToString());
                current.Clear();
            }
        }
    }

    /// <summary>One update per call, each call complete: the consumer splits arguments into fragments as it streams them.</summary>
    private static IEnumerable<ChatResponseUpdate> ToolCalls(IReadOnlyList<FunctionCallContent> calls) =>
        calls.Select((call, i) => new ChatResponseUpdate(ChatRole.Assistant, [call])
        {
            FinishReason = i == calls.Count - 1 ? ChatFinishReason.ToolCalls : null,
        });

    private static int ArgumentTokens(FunctionCallContent call) =>
        JsonFragments(JsonSerializer.Serialize(call.Arguments, Compact)).Count;

    private static IEnumerable<ChatResponseUpdate> Plain(uint seed, int count)
    {
        for (var i = 0; i < count; i++)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, SyntheticChatClient.TokenText(seed, i))
            {
                FinishReason = i == count - 1 ? ChatFinishReason.Length : null,
            };
        }
    }

    // Ends with Stop when the whole text fits in maxTokens, else with Length at the limit.
    private static IEnumerable<ChatResponseUpdate> Text(List<string> fragments, int maxTokens)
    {
        var count = Math.Min(fragments.Count, maxTokens);
        for (var i = 0; i < count; i++)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, fragments[i])
            {
                FinishReason = i < count - 1 ? null : count == fragments.Count ? ChatFinishReason.Stop : ChatFinishReason.Length,
            };
        }
    }

    // The JSON is the answer: it is never cut at max tokens, because half a document is no answer at all.
    private static string Json(ChatResponseFormatJson format, string? report, uint seed, int maxTokens)
    {
        if (format.Schema is { } schema)
        {
            return JsonSchemaSampler.SampleJson(schema, seed);
        }

        var answer = report ?? string.Concat(Enumerable.Range(0, Math.Clamp(maxTokens, 1, 16)).Select(i => SyntheticChatClient.TokenText(seed, i)));
        return new JsonObject { ["answer"] = answer }.ToJsonString();
    }

    private static string Report(IReadOnlyList<ChatMessage> messages, List<FunctionResultContent> results)
    {
        var names = messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()
            .GroupBy(c => c.CallId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Name, StringComparer.Ordinal);
        var builder = new StringBuilder();
        foreach (var result in results)
        {
            var tool = names.TryGetValue(result.CallId, out var name) ? string.Concat("The ", name, " tool") : "The tool";
            var text = Collapse(ResultText(result));
            builder.Append(builder.Length > 0 ? " " : "").Append(tool).Append(" returned: ")
                .Append(text.Length == 0 ? "nothing" : text).Append('.');
        }

        return builder.ToString();
    }

    private static string Thought(IReadOnlyList<ChatMessage> messages, List<FunctionResultContent> results,
        IReadOnlyList<FunctionCallContent> calls, ChatResponseFormatJson? json, uint seed, int maxTokens) =>
        results.Count > 0 ? string.Create(CultureInfo.InvariantCulture, $"The tools answered {results.Count} call(s), so I report what they returned.")
        : calls.Count > 0 ? string.Concat("The request asks for ", string.Join(" and ", calls.Select(c => c.Name)), ", so I call it with arguments its schema accepts.")
        : json is not null ? "The answer must be JSON, so I fill in every field the schema asks for."
        : string.Create(CultureInfo.InvariantCulture, $"The prompt has {InputTokens(messages)} words; I answer in {maxTokens}, starting with \"{SyntheticChatClient.TokenText(seed, 0)}\".");

    private static string ResultText(FunctionResultContent result) => result.Result switch
    {
        null => "",
        string text => text,
        JsonElement element => element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText(),
        var other => Serialized(other),
    };

    private static string Serialized(object value)
    {
        try
        {
            return JsonSerializer.Serialize(value, AIJsonUtilities.DefaultOptions);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or JsonException)
        {
            return value.ToString() ?? "";
        }
    }

    // One line, trimmed and capped, so a large result cannot make a long answer.
    private static string Collapse(string text)
    {
        var line = string.Join(' ', text.Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
        return line.Length <= MaxResultChars ? line
            : string.Concat(line.AsSpan(0, char.IsHighSurrogate(line[MaxResultChars - 1]) ? MaxResultChars - 1 : MaxResultChars), "…");
    }

    private static List<string> Words(string text)
    {
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return [.. words.Select((w, i) => i == 0 ? w : string.Concat(" ", w))];
    }

    private static int CountWords(string text)
    {
        var count = 0;
        var inWord = false;
        foreach (var c in text)
        {
            var letter = !char.IsWhiteSpace(c);
            count += letter && !inWord ? 1 : 0;
            inWord = letter;
        }

        return count;
    }
}
