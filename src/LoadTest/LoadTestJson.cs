using System.Text.Json.Serialization;

namespace VixAspire.LoadTest;

/// <summary>The typed envelope of every SSE event; one payload shape covers start, token, error and end.</summary>
internal sealed record SseEnvelope(string? Type, EventPayload? Payload);

internal sealed record EventPayload(int? Index, string? Text, string? Code, string? Reason, Usage? Usage);

internal sealed record Usage(int? OutputTokens);

internal sealed record InferenceBody(string Prompt, string Model, int MaxTokens);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(SseEnvelope))]
[JsonSerializable(typeof(InferenceBody))]
[JsonSerializable(typeof(LoadReport))]
internal sealed partial class LoadTestJson : JsonSerializerContext;
