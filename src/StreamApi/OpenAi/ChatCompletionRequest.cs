using System.Text.Json;
using System.Text.Json.Serialization;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>The subset of OpenAI's chat-completions request that VixAspire serves; unknown fields are ignored.</summary>
public sealed class ChatCompletionRequest
{
    public string? Model { get; set; }

    public List<ChatCompletionMessage?>? Messages { get; set; }

    public bool? Stream { get; set; }

    public ChatCompletionStreamOptions? StreamOptions { get; set; }

    public int? MaxTokens { get; set; }

    public int? MaxCompletionTokens { get; set; }

    public float? Temperature { get; set; }

    public int? N { get; set; }

    /// <summary>A string or an array of up to 4 strings; honoured by the worker on every model, and passed to upstreams.</summary>
    public JsonElement? Stop { get; set; }
}

public sealed class ChatCompletionMessage
{
    public string? Role { get; set; }

    /// <summary>A string, or an array of content parts of which the text ones are used.</summary>
    public JsonElement? Content { get; set; }
}

public sealed class ChatCompletionStreamOptions
{
    public bool? IncludeUsage { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ChatCompletionRequest))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext;
