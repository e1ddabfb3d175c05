using System.Text.Json.Serialization;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>OpenAI's error object: <c>{"error":{"message","type","param","code"}}</c>.</summary>
internal sealed record OpenAiError([property: JsonPropertyName("error")] OpenAiErrorBody Body);

internal sealed record OpenAiErrorBody(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

[JsonSerializable(typeof(OpenAiError))]
internal sealed partial class OpenAiErrorJsonContext : JsonSerializerContext;
