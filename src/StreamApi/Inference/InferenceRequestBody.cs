using System.Text.Json;
using System.Text.Json.Serialization;

namespace VixAspire.StreamApi.Inference;

/// <summary>The public body of <c>POST /infer/stream</c>, as the client sent it (not yet validated).</summary>
public sealed class InferenceRequestBody
{
    public string? Prompt { get; set; }

    public List<ChatTurnBody?>? Messages { get; set; }

    public string? Model { get; set; }

    public int? MaxTokens { get; set; }

    public float? Temperature { get; set; }

    /// <summary>A string or an array of strings, as in OpenAI's API; validated by <see cref="StopSequences"/>.</summary>
    public JsonElement? Stop { get; set; }
}

public sealed class ChatTurnBody
{
    public string? Role { get; set; }

    public string? Content { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(InferenceRequestBody))]
internal sealed partial class InferenceJsonContext : JsonSerializerContext;
