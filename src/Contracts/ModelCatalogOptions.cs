using System.ComponentModel.DataAnnotations;

namespace VixAspire.Contracts;

/// <summary>The routing table: public model names and the provider that serves each.</summary>
public sealed class ModelCatalogOptions : IValidatableObject
{
    public const string SectionName = "Inference";

    public const int MaxTokensUpperBound = 32_768;

    [Required]
    public string DefaultModel { get; set; } = "synthetic";

    [Range(1, MaxTokensUpperBound)]
    public int DefaultMaxTokens { get; set; } = 128;

    /// <summary>Model name to route. The shipped synthetic models are present unless configuration replaces them.</summary>
    public Dictionary<string, ModelRoute> Models { get; set; } = new(StringComparer.Ordinal)
    {
        ["synthetic"] = new() { Provider = ProviderNames.Synthetic },
        ["synthetic-stall"] = new() { Provider = ProviderNames.SyntheticStall },
        ["synthetic-fail"] = new() { Provider = ProviderNames.SyntheticFail },
        ["synthetic-reasoning"] = new() { Provider = ProviderNames.SyntheticReasoning },
    };

    // Data annotations do not descend into dictionary values, so routes are checked here.
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (name, route) in Models)
        {
            if (string.IsNullOrWhiteSpace(route.Provider))
            {
                yield return new ValidationResult($"Model '{name}' names no provider.", [nameof(Models)]);
            }

            foreach (var fallback in route.Fallbacks)
            {
                if (fallback == name || !Models.ContainsKey(fallback))
                {
                    yield return new ValidationResult(
                        $"Fallback '{fallback}' of model '{name}' must name another model of the routing table.", [nameof(Models)]);
                }
            }
        }
    }
}

public sealed class ModelRoute
{
    /// <summary>
    /// The provider (a keyed <c>IChatClient</c> in the worker) that serves this model: a synthetic provider or
    /// the name of an OpenAI-compatible upstream (<c>Providers:OpenAI:&lt;name&gt;</c>).
    /// </summary>
    [Required]
    public string Provider { get; set; } = ProviderNames.Synthetic;

    /// <summary>The model name sent upstream; defaults to the upstream's own model, else the public name.</summary>
    public string? UpstreamModel { get; set; }

    /// <summary>
    /// Other public model names to try, in order, when this model's provider fails before the first token.
    /// Only their own provider is tried, not their fallbacks.
    /// </summary>
    public IList<string> Fallbacks { get; set; } = [];
}

public static class ProviderNames
{
    public const string Synthetic = "synthetic";
    public const string SyntheticStall = "synthetic-stall";
    public const string SyntheticFail = "synthetic-fail";
    public const string SyntheticReasoning = "synthetic-reasoning";
}
