using System.Text.Json.Serialization;

namespace VixAspire.Contracts;

/// <summary>
/// OpenAI's error object, <c>{"error":{"message","type","param","code"}}</c>: how the OpenAI-compatible API and the
/// gateway (for <c>/v1</c> refusals) spell an error, so OpenAI clients read both the same way.
/// </summary>
public sealed record OpenAiError([property: JsonPropertyName("error")] OpenAiErrorBody Body);

public sealed record OpenAiErrorBody(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

[JsonSerializable(typeof(OpenAiError))]
public sealed partial class OpenAiErrorJsonContext : JsonSerializerContext;
