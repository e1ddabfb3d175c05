using System.Text.Json;
using System.Text.Json.Serialization;

namespace VixAspire.Contracts;

/// <summary>
/// One message of the conversation, as OpenAI's chat completions spell it: text as <see cref="Content"/>, or content
/// parts (text and images) as <see cref="Parts"/>; an assistant's tool calls; a tool's result with the call it answers.
/// </summary>
/// <param name="Role"><c>system</c>, <c>developer</c>, <c>user</c>, <c>assistant</c> or <c>tool</c>.</param>
/// <param name="Content">The message's text, when it was sent as a string (or is empty: an assistant turn that only calls tools).</param>
public sealed record ChatTurn(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("content")] string? Content)
{
    /// <summary>The content as parts, when it was sent as an array; then <see cref="Content"/> is null.</summary>
    [JsonPropertyName("parts")]
    public IReadOnlyList<ContentPart>? Parts { get; init; }

    /// <summary>The participant's name (OpenAI's <c>name</c>).</summary>
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    /// <summary>The tool calls of an assistant turn.</summary>
    [JsonPropertyName("tool_calls")]
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>The call a <c>tool</c> turn answers.</summary>
    [JsonPropertyName("tool_call_id")]
    public string? ToolCallId { get; init; }

    /// <summary>
    /// An assistant turn's reasoning, as the clients that read <c>reasoning_content</c> (vLLM, DeepSeek, the AI SDK's
    /// OpenAI-compatible provider) send an earlier answer back.
    /// </summary>
    [JsonPropertyName("reasoning_content")]
    public string? ReasoningContent { get; init; }

    /// <summary>The whole text of the turn: <see cref="Content"/>, or its text parts joined.</summary>
    public string Text() => Content ?? (Parts is null ? "" : string.Concat(Parts.Where(p => p.Type == ContentPart.TextType).Select(p => p.Text)));
}

/// <summary>One content part: text, or an image by URL (a <c>data:</c> URI included).</summary>
public sealed record ContentPart(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("text")] string? Text = null,
    [property: JsonPropertyName("image_url")] string? ImageUrl = null,
    [property: JsonPropertyName("detail")] string? Detail = null)
{
    public const string TextType = "text";
    public const string ImageType = "image_url";
}

/// <summary>A call to a function tool: its id, the function's name and its arguments as the model wrote them (JSON text).</summary>
public sealed record ToolCall(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("arguments")] string Arguments);

/// <summary>A function the model may call, with its parameters as a JSON schema.</summary>
public sealed record ToolDefinition(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("description")] string? Description,
    [property: JsonPropertyName("parameters")] JsonElement? Parameters,
    [property: JsonPropertyName("strict")] bool? Strict);

/// <summary>OpenAI's <c>tool_choice</c>: <c>none</c>, <c>auto</c>, <c>required</c>, or one named function.</summary>
public sealed record ToolChoice(
    [property: JsonPropertyName("mode")] string Mode,
    [property: JsonPropertyName("function")] string? Function = null)
{
    public const string None = "none";
    public const string Auto = "auto";
    public const string Required = "required";

    /// <summary>The mode of a choice that names a function (<see cref="Function"/>).</summary>
    public const string Named = "function";
}

/// <summary>OpenAI's <c>response_format</c>: <c>text</c>, <c>json_object</c>, or <c>json_schema</c> with its schema.</summary>
public sealed record ResponseFormat(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("name")] string? Name = null,
    [property: JsonPropertyName("description")] string? Description = null,
    [property: JsonPropertyName("schema")] JsonElement? Schema = null,
    [property: JsonPropertyName("strict")] bool? Strict = null)
{
    public const string TextType = "text";
    public const string JsonObjectType = "json_object";
    public const string JsonSchemaType = "json_schema";
}

/// <summary>
/// A validated, normalised request as it travels through the queue: the whole chat request, whichever front end took
/// it (<c>prompt</c> has become a user message). Every field is either honoured by VixAspire, passed to the provider,
/// or was refused before the request was queued: none is dropped.
/// </summary>
public sealed record InferenceRequest(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("messages")] IReadOnlyList<ChatTurn> Messages,
    [property: JsonPropertyName("max_tokens")] int MaxTokens,
    [property: JsonPropertyName("temperature")] float? Temperature)
{
    [JsonPropertyName("top_p")]
    public float? TopP { get; init; }

    [JsonPropertyName("frequency_penalty")]
    public float? FrequencyPenalty { get; init; }

    [JsonPropertyName("presence_penalty")]
    public float? PresencePenalty { get; init; }

    [JsonPropertyName("seed")]
    public long? Seed { get; init; }

    /// <summary>Up to four sequences; the text ends before the first that appears (VixAspire cuts it, whatever the provider does).</summary>
    [JsonPropertyName("stop")]
    public IReadOnlyList<string>? Stop { get; init; }

    [JsonPropertyName("tools")]
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    [JsonPropertyName("tool_choice")]
    public ToolChoice? ToolChoice { get; init; }

    [JsonPropertyName("parallel_tool_calls")]
    public bool? ParallelToolCalls { get; init; }

    [JsonPropertyName("response_format")]
    public ResponseFormat? ResponseFormat { get; init; }

    /// <summary>OpenAI's <c>reasoning_effort</c> (<c>minimal</c>, <c>low</c>, <c>medium</c>, <c>high</c>, ...), for reasoning models.</summary>
    [JsonPropertyName("reasoning_effort")]
    public string? ReasoningEffort { get; init; }

    /// <summary>The end user, as the client named them (OpenAI's <c>user</c>).</summary>
    [JsonPropertyName("user")]
    public string? User { get; init; }

    [JsonPropertyName("metadata")]
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, ContractsJsonContext.Default.InferenceRequest);

    public static InferenceRequest? FromUtf8Json(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ContractsJsonContext.Default.InferenceRequest);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InferenceRequest))]
internal sealed partial class ContractsJsonContext : JsonSerializerContext;
