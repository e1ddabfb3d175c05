using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;
using VixAspire.Contracts;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Maps a queued request onto Microsoft.Extensions.AI, so every <see cref="IChatClient"/> gets the whole request:
/// each turn's contents (text, images, tool calls, tool results) and every option. Each message and the options also
/// carry the request in OpenAI's own types (<see cref="OpenAiRequestMapping"/>), which the OpenAI adapter sends as
/// they are: its own mapping would rewrite names, tool arguments and schemas. Other clients ignore them.
/// </summary>
internal static class ChatRequestMapping
{
    /// <summary>The key Microsoft.Extensions.AI's adapters read a tool's or a schema's strictness from.</summary>
    public const string StrictKey = "strict";

    /// <summary>The key the OpenAI adapter reads an image's detail level from.</summary>
    public const string DetailKey = "detail";

    private static readonly ChatRole Developer = new("developer");

    private static readonly JsonTypeInfo<IDictionary<string, object?>> ArgumentsInfo =
        (JsonTypeInfo<IDictionary<string, object?>>)AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>));

    public static List<ChatMessage> ToChatMessages(InferenceRequest request)
    {
        var messages = new List<ChatMessage>(request.Messages.Count);
        foreach (var turn in request.Messages)
        {
            messages.Add(ToChatMessage(turn));
        }

        return messages;
    }

    public static ChatOptions ToChatOptions(InferenceRequest request) => new()
    {
        MaxOutputTokens = request.MaxTokens,
        Temperature = request.Temperature,
        TopP = request.TopP,
        FrequencyPenalty = request.FrequencyPenalty,
        PresencePenalty = request.PresencePenalty,
        Seed = request.Seed,
        StopSequences = request.Stop is { Count: > 0 } stop ? [.. stop] : null,
        Tools = request.Tools is { Count: > 0 } tools ? [.. tools.Select(t => new ToolDeclaration(t))] : null,
        ToolMode = ToToolMode(request.ToolChoice),
        AllowMultipleToolCalls = request.ParallelToolCalls,
        ResponseFormat = ToResponseFormat(request.ResponseFormat),
        Reasoning = ToReasoningEffort(request.ReasoningEffort) is { } effort ? new ReasoningOptions { Effort = effort } : null,
        RawRepresentationFactory = OpenAiRequestMapping.OptionsFactory(request),
    };

    public static ChatRole ToRole(string role) => role switch
    {
        "system" => ChatRole.System,
        "developer" => Developer,
        "user" => ChatRole.User,
        "assistant" => ChatRole.Assistant,
        "tool" => ChatRole.Tool,
        _ => new ChatRole(role),
    };

    private static MappedChatMessage ToChatMessage(ChatTurn turn)
    {
        var role = ToRole(turn.Role);
        var contents = new List<AIContent>();
        if (role == ChatRole.Tool)
        {
            // The result as the raw string: a string result goes to the upstream unchanged, any other would be serialised.
            contents.Add(new FunctionResultContent(turn.ToolCallId ?? "", turn.Text()));
        }
        else
        {
            if (turn.ReasoningContent is { Length: > 0 } reasoning)
            {
                contents.Add(new TextReasoningContent(reasoning));
            }

            AddContents(turn, contents);
            foreach (var call in turn.ToolCalls ?? [])
            {
                contents.Add(ToFunctionCall(call));
            }
        }

        // The OpenAI-typed copy is made only for an OpenAI-compatible upstream (DeclaredToolsChatClient): made for every
        // request it cost the synthetic path 5% of its tokens/s at 1,000 streams.
        return new MappedChatMessage(turn, role, contents) { AuthorName = turn.Name };
    }

    private static void AddContents(ChatTurn turn, List<AIContent> contents)
    {
        if (turn.Parts is null)
        {
            // An assistant turn that only calls tools has no text to send.
            if (turn.Content is { } text && (text.Length > 0 || turn.ToolCalls is not { Count: > 0 }))
            {
                contents.Add(new TextContent(text));
            }

            return;
        }

        foreach (var part in turn.Parts)
        {
            var content = part.Type switch
            {
                ContentPart.TextType => new TextContent(part.Text),
                ContentPart.ImageType => ToImage(part),
                _ => null,
            };
            if (content is not null)
            {
                contents.Add(content);
            }
        }
    }

    /// <summary>A <c>data:</c> URI as its bytes, any other absolute URL as a link; null for what is neither (the API refuses it).</summary>
    private static AIContent? ToImage(ContentPart part)
    {
        AIContent? image = null;
        if (part.ImageUrl is not { } url)
        {
            return null;
        }

        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                image = new DataContent(url);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                return null;
            }
        }
        else if (Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            image = new UriContent(uri, "image/*");
        }

        if (image is not null && part.Detail is { } detail)
        {
            image.AdditionalProperties = new() { [DetailKey] = detail };
        }

        return image;
    }

    /// <summary>
    /// The call with its arguments parsed into a dictionary, as Microsoft.Extensions.AI holds them; arguments that are not a
    /// JSON object leave it without arguments and with the parse error in <see cref="FunctionCallContent.Exception"/>.
    /// </summary>
    private static FunctionCallContent ToFunctionCall(ToolCall call) =>
        FunctionCallContent.CreateFromParsedArguments(call.Arguments, call.Id, call.Name,
            static arguments => JsonSerializer.Deserialize(arguments, ArgumentsInfo));

    private static ChatToolMode? ToToolMode(ToolChoice? choice) => choice?.Mode switch
    {
        ToolChoice.None => ChatToolMode.None,
        ToolChoice.Auto => ChatToolMode.Auto,
        ToolChoice.Required => ChatToolMode.RequireAny,
        ToolChoice.Named when choice.Function is { } name => ChatToolMode.RequireSpecific(name),
        _ => null,
    };

    private static ChatResponseFormat? ToResponseFormat(ResponseFormat? format) => format?.Type switch
    {
        ResponseFormat.TextType => ChatResponseFormat.Text,
        ResponseFormat.JsonObjectType => ChatResponseFormat.Json,
        ResponseFormat.JsonSchemaType when format.Schema is { } schema => ChatResponseFormat.ForJsonSchema(schema, format.Name, format.Description),
        ResponseFormat.JsonSchemaType => ChatResponseFormat.Json,
        _ => null,
    };

    /// <summary>The nearest of Microsoft.Extensions.AI's levels (OpenAI's <c>minimal</c> has none of its own); OpenAI upstreams get the client's word.</summary>
    private static ReasoningEffort? ToReasoningEffort(string? effort) => effort switch
    {
        "none" => ReasoningEffort.None,
        "minimal" or "low" => ReasoningEffort.Low,
        "medium" => ReasoningEffort.Medium,
        "high" => ReasoningEffort.High,
        "xhigh" => ReasoningEffort.ExtraHigh,
        _ => null,
    };
}

/// <summary>A function tool as the client declared it: its name, description, parameters' JSON schema and strictness.</summary>
internal sealed class ToolDeclaration(ToolDefinition definition) : AIFunctionDeclaration
{
    // What a function without declared parameters takes.
    private static readonly JsonElement NoParameters = JsonElement.Parse("""{"type":"object","properties":{}}""");

    private static readonly Dictionary<string, object?> Strict = new() { [ChatRequestMapping.StrictKey] = true };
    private static readonly Dictionary<string, object?> NotStrict = new() { [ChatRequestMapping.StrictKey] = false };

    public ToolDefinition Definition => definition;

    public override string Name => definition.Name;

    public override string Description => definition.Description ?? "";

    public override JsonElement JsonSchema => definition.Parameters ?? NoParameters;

    public override IReadOnlyDictionary<string, object?> AdditionalProperties => definition.Strict switch
    {
        true => Strict,
        false => NotStrict,
        null => base.AdditionalProperties,
    };
}

/// <summary>A request's message with the turn it came from, so that its OpenAI-typed copy can be made when one is needed.</summary>
internal sealed class MappedChatMessage(ChatTurn turn, ChatRole role, IList<AIContent> contents) : ChatMessage(role, contents)
{
    public ChatTurn Turn => turn;
}
