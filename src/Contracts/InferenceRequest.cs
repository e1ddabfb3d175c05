using System.Text.Json;
using System.Text.Json.Serialization;

namespace VixAspire.Contracts;

/// <summary>One chat turn, OpenAI-style.</summary>
public sealed record ChatTurn(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("content")] string Content);

/// <summary>
/// A validated, normalised request as it travels through the queue: <c>prompt</c> has become a user message,
/// and <c>stop</c> (a string or an array) a list of one to four sequences, or null.
/// </summary>
public sealed record InferenceRequest(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("messages")] IReadOnlyList<ChatTurn> Messages,
    [property: JsonPropertyName("max_tokens")] int MaxTokens,
    [property: JsonPropertyName("temperature")] float? Temperature,
    [property: JsonPropertyName("stop")] IReadOnlyList<string>? Stop = null)
{
    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, ContractsJsonContext.Default.InferenceRequest);

    public static InferenceRequest? FromUtf8Json(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ContractsJsonContext.Default.InferenceRequest);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InferenceRequest))]
internal sealed partial class ContractsJsonContext : JsonSerializerContext;
