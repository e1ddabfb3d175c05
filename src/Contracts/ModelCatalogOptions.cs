using System.ComponentModel.DataAnnotations;

namespace VixAspire.Contracts;

/// <summary>The routing table: public model names and the provider that serves each.</summary>
public sealed class ModelCatalogOptions
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
    };
}

public sealed class ModelRoute
{
    /// <summary>The provider (a keyed <c>IChatClient</c> in the worker) that serves this model.</summary>
    [Required]
    public string Provider { get; set; } = ProviderNames.Synthetic;

    /// <summary>The model name sent upstream; defaults to the public name.</summary>
    public string? UpstreamModel { get; set; }
}

public static class ProviderNames
{
    public const string Synthetic = "synthetic";
    public const string SyntheticStall = "synthetic-stall";
    public const string SyntheticFail = "synthetic-fail";
}
