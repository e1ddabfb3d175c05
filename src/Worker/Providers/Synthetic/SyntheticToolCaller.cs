using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace VixAspire.Worker.Providers.Synthetic;

/// <summary>
/// Decides which tools the synthetic model calls: the one <see cref="ChatOptions.ToolMode"/> requires, else those the
/// last user message names, in the order it names them; never any under <see cref="ChatToolMode.None"/>.
/// </summary>
public static class SyntheticToolCaller
{
    public static IReadOnlyList<FunctionCallContent> Calls(IReadOnlyList<ChatMessage> messages, ChatOptions? options, uint seed)
    {
        var tools = (options?.Tools ?? []).OfType<AIFunctionDeclaration>().DistinctBy(t => t.Name, StringComparer.Ordinal).ToList();
        if (tools.Count == 0 || options!.ToolMode is NoneChatToolMode)
        {
            return [];
        }

        var chosen = options.ToolMode switch
        {
            RequiredChatToolMode { RequiredFunctionName: { } name } =>
                [tools.Find(t => t.Name == name) ?? throw new ArgumentException($"The tool choice names '{name}', which is not among the request's tools.", nameof(options))],
            RequiredChatToolMode => NamedIn(LastUserText(messages), tools) is { Count: > 0 } named ? named : [tools[0]],
            _ => NamedIn(LastUserText(messages), tools),
        };
        if (options.AllowMultipleToolCalls == false && chosen.Count > 1)
        {
            chosen = [chosen[0]];
        }

        // Numbered after the calls already in the conversation, so ids stay unique across the turns of an agent loop.
        var first = messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Count() + 1;
        return [.. chosen.Select((tool, i) => new FunctionCallContent($"call_{first + i}", tool.Name, Arguments(tool, seed)))];
    }

    /// <summary>Arguments for the tool's parameter schema, as JSON elements so any serializer writes them as they are.</summary>
    public static Dictionary<string, object?> Arguments(AIFunctionDeclaration tool, uint seed)
    {
        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (JsonSchemaSampler.Sample(tool.JsonSchema, seed ^ SyntheticChatClient.Seed(tool.Name)) is not JsonObject sampled)
        {
            return arguments;
        }

        using var document = JsonDocument.Parse(sampled.ToJsonString());
        foreach (var property in document.RootElement.EnumerateObject())
        {
            arguments[property.Name] = property.Value.Clone();
        }

        return arguments;
    }

    private static string LastUserText(IReadOnlyList<ChatMessage> messages) =>
        messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";

    // Whole words only, case-insensitive: "weather" does not name get_weather, "GET_WEATHER." does.
    private static List<AIFunctionDeclaration> NamedIn(string text, List<AIFunctionDeclaration> tools) =>
        [.. tools
            .Select(tool => (tool, at: WholeWordIndex(text, tool.Name)))
            .Where(t => t.at >= 0)
            .OrderBy(t => t.at)
            .Select(t => t.tool)];

    private static int WholeWordIndex(string text, string word)
    {
        if (word.Length == 0)
        {
            return -1;
        }

        for (var at = text.IndexOf(word, StringComparison.OrdinalIgnoreCase); at >= 0; at = text.IndexOf(word, at + 1, StringComparison.OrdinalIgnoreCase))
        {
            var end = at + word.Length;
            if ((at == 0 || !IsNameChar(text[at - 1])) && (end == text.Length || !IsNameChar(text[end])))
            {
                return at;
            }
        }

        return -1;
    }

    private static bool IsNameChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '-';
}
