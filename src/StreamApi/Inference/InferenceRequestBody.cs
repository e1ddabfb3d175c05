using System.Text.Json;
using System.Text.Json.Serialization;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// The one public request body of <c>POST /infer/stream</c>, the WebSocket's <c>inference.request</c> payload and
/// <c>POST /v1/chat/completions</c>, as the client sent it (not yet validated): OpenAI's chat-completions request, plus
/// <c>prompt</c> off <c>/v1</c>. Every OpenAI field is declared, so one VixAspire does not carry is refused by name;
/// a field OpenAI does not have fails deserialization (<see cref="InferenceJsonContext"/>).
/// </summary>
public sealed class InferenceRequestBody
{
    public string? Prompt { get; set; }

    public List<ChatTurnBody?>? Messages { get; set; }

    public string? Model { get; set; }

    public int? MaxTokens { get; set; }

    public int? MaxCompletionTokens { get; set; }

    public float? Temperature { get; set; }

    public float? TopP { get; set; }

    public float? FrequencyPenalty { get; set; }

    public float? PresencePenalty { get; set; }

    public long? Seed { get; set; }

    /// <summary>A string or an array of strings, as in OpenAI's API; validated by <see cref="StopSequences"/>.</summary>
    public JsonElement? Stop { get; set; }

    public bool? Stream { get; set; }

    public StreamOptionsBody? StreamOptions { get; set; }

    public List<ToolBody?>? Tools { get; set; }

    /// <summary>A string (<c>none</c>, <c>auto</c>, <c>required</c>) or an object naming a function; read by <see cref="ChatTools"/>.</summary>
    public JsonElement? ToolChoice { get; set; }

    public bool? ParallelToolCalls { get; set; }

    public ResponseFormatBody? ResponseFormat { get; set; }

    public string? ReasoningEffort { get; set; }

    public string? User { get; set; }

    public Dictionary<string, string>? Metadata { get; set; }

    // OpenAI's fields that VixAspire does not carry: each is refused by name unless null or trivially honoured (RefusedFields).
    public JsonElement? N { get; set; }

    public JsonElement? Logprobs { get; set; }

    public JsonElement? TopLogprobs { get; set; }

    public JsonElement? LogitBias { get; set; }

    public JsonElement? Modalities { get; set; }

    public JsonElement? Audio { get; set; }

    public JsonElement? Prediction { get; set; }

    public JsonElement? ServiceTier { get; set; }

    public JsonElement? Store { get; set; }

    public JsonElement? WebSearchOptions { get; set; }

    public JsonElement? Functions { get; set; }

    public JsonElement? FunctionCall { get; set; }

    public JsonElement? PromptCacheKey { get; set; }

    public JsonElement? PromptCacheRetention { get; set; }

    public JsonElement? PromptCacheOptions { get; set; }

    public JsonElement? SafetyIdentifier { get; set; }

    public JsonElement? Verbosity { get; set; }

    public JsonElement? Moderation { get; set; }
}

public sealed class ChatTurnBody
{
    public string? Role { get; set; }

    /// <summary>A string, or an array of content parts (<c>text</c>, <c>image_url</c>); read by <see cref="ChatMessages"/>.</summary>
    public MessageContent? Content { get; set; }

    public string? Name { get; set; }

    public List<ToolCallBody?>? ToolCalls { get; set; }

    public string? ToolCallId { get; set; }

    /// <summary>An earlier answer's reasoning, as the clients that read <c>delta.reasoning_content</c> send it back.</summary>
    public string? ReasoningContent { get; set; }

    // OpenAI's assistant fields that VixAspire does not carry: refused unless null (or, for annotations, empty), which is
    // how a client that sends a previous answer's message back spells them.
    public JsonElement? Refusal { get; set; }

    public JsonElement? Annotations { get; set; }

    public JsonElement? Audio { get; set; }

    public JsonElement? FunctionCall { get; set; }
}

/// <summary>A message's <c>content</c> kept as raw JSON (a string or an array of parts); a string converts to it.</summary>
[JsonConverter(typeof(MessageContentConverter))]
public readonly record struct MessageContent(JsonElement Json)
{
    public static implicit operator MessageContent(string text) => new(JsonSerializer.SerializeToElement(text, InferenceJsonContext.Default.String));
}

public sealed class MessageContentConverter : JsonConverter<MessageContent>
{
    public override MessageContent Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(JsonElement.ParseValue(ref reader));

    public override void Write(Utf8JsonWriter writer, MessageContent value, JsonSerializerOptions options) => value.Json.WriteTo(writer);
}

public sealed class ToolCallBody
{
    public string? Id { get; set; }

    public string? Type { get; set; }

    public FunctionCallBody? Function { get; set; }

    /// <summary>A custom tool's call, which VixAspire does not carry.</summary>
    public JsonElement? Custom { get; set; }
}

public sealed class FunctionCallBody
{
    public string? Name { get; set; }

    public string? Arguments { get; set; }
}

public sealed class ToolBody
{
    public string? Type { get; set; }

    public FunctionBody? Function { get; set; }

    /// <summary>A custom tool, which VixAspire does not carry.</summary>
    public JsonElement? Custom { get; set; }
}

public sealed class FunctionBody
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public JsonElement? Parameters { get; set; }

    public bool? Strict { get; set; }
}

public sealed class ResponseFormatBody
{
    public string? Type { get; set; }

    public JsonSchemaBody? JsonSchema { get; set; }
}

public sealed class JsonSchemaBody
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public JsonElement? Schema { get; set; }

    public bool? Strict { get; set; }
}

public sealed class StreamOptionsBody
{
    public bool? IncludeUsage { get; set; }

    public bool? IncludeObfuscation { get; set; }
}

/// <summary>
/// Fields OpenAI does not have are refused (as OpenAI does), and the reader allows nesting well past
/// <see cref="ChatTools.MaxSchemaDepth"/> so a schema too deep is refused by name rather than by the reader.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, MaxDepth = BodyJson.MaxDepth)]
[JsonSerializable(typeof(InferenceRequestBody))]
[JsonSerializable(typeof(string))]
internal sealed partial class InferenceJsonContext : JsonSerializerContext;
