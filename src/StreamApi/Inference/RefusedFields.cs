using System.Text.Json;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// OpenAI's chat-completions fields that VixAspire does not carry. Each is refused with a 400 naming it, unless it is
/// null or a value VixAspire honours by doing nothing (one choice, no log probabilities, nothing stored, text only).
/// </summary>
internal static class RefusedFields
{
    private static readonly (string Name, Func<InferenceRequestBody, JsonElement?> Value, Func<JsonElement, bool> Honoured, string Why)[] Fields =
    [
        ("n", b => b.N, v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n == 1, "Only n=1 is supported."),
        ("logprobs", b => b.Logprobs, v => v.ValueKind == JsonValueKind.False, "'logprobs' is not supported by VixAspire; only false is accepted."),
        ("top_logprobs", b => b.TopLogprobs, _ => false, "'top_logprobs' is not supported by VixAspire."),
        ("logit_bias", b => b.LogitBias, _ => false, "'logit_bias' is not supported by VixAspire."),
        ("modalities", b => b.Modalities, IsTextOnly, "'modalities' may only be [\"text\"]: VixAspire answers in text."),
        ("audio", b => b.Audio, _ => false, "'audio' output is not supported by VixAspire."),
        ("prediction", b => b.Prediction, _ => false, "'prediction' is not supported by VixAspire."),
        ("service_tier", b => b.ServiceTier, _ => false, "'service_tier' is not supported by VixAspire."),
        ("store", b => b.Store, v => v.ValueKind == JsonValueKind.False, "'store' is not supported by VixAspire; only false is accepted."),
        ("web_search_options", b => b.WebSearchOptions, _ => false, "'web_search_options' is not supported by VixAspire."),
        ("functions", b => b.Functions, _ => false, "'functions' is not supported by VixAspire; use 'tools'."),
        ("function_call", b => b.FunctionCall, _ => false, "'function_call' is not supported by VixAspire; use 'tool_choice'."),
        ("prompt_cache_key", b => b.PromptCacheKey, _ => false, "'prompt_cache_key' is not supported by VixAspire."),
        ("prompt_cache_retention", b => b.PromptCacheRetention, _ => false, "'prompt_cache_retention' is not supported by VixAspire."),
        ("prompt_cache_options", b => b.PromptCacheOptions, _ => false, "'prompt_cache_options' is not supported by VixAspire."),
        ("safety_identifier", b => b.SafetyIdentifier, _ => false, "'safety_identifier' is not supported by VixAspire; 'user' is passed through."),
        ("verbosity", b => b.Verbosity, _ => false, "'verbosity' is not supported by VixAspire."),
        ("moderation", b => b.Moderation, _ => false, "'moderation' is not supported by VixAspire."),
    ];

    /// <summary>The names of the fields refused unless null or honoured, for the README's table and tests.</summary>
    public static IEnumerable<string> Names => Fields.Select(f => f.Name);

    public static void Check(InferenceRequestBody body, RequestErrors errors)
    {
        foreach (var (name, value, honoured, why) in Fields)
        {
            if (value(body) is { ValueKind: not JsonValueKind.Null } set && !honoured(set))
            {
                errors.Add(name, why);
            }
        }
    }

    private static bool IsTextOnly(JsonElement value) =>
        value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 1 && value[0].ValueEquals("text"u8);
}
