using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;

namespace VixAspire.Worker.Providers;

/// <summary>One provider to try for a request: the route's own, or one of its fallbacks'.</summary>
/// <param name="Model">The public model name whose route this is.</param>
/// <param name="Provider">The keyed provider name.</param>
/// <param name="UpstreamModel">Sent as the model id; null lets the upstream client use its configured model.</param>
/// <param name="AttemptTimeout">How long one attempt may wait for its first chunk; null for built-in providers.</param>
internal sealed record ProviderCandidate(string Model, string Provider, IChatClient Client, string? UpstreamModel, TimeSpan? AttemptTimeout);

/// <summary>Resolves a public model name through the routing table to the providers to try, in order.</summary>
internal sealed class ProviderCatalog(
    IServiceProvider services,
    IOptionsMonitor<ModelCatalogOptions> catalog,
    IOptionsMonitor<OpenAiUpstreamOptions> upstreams,
    OpenAiUpstreamNames upstreamNames)
{
    /// <summary>The route's provider then its fallbacks' providers, or null when the model or its provider is unknown.</summary>
    public IReadOnlyList<ProviderCandidate>? Resolve(string model)
    {
        var table = catalog.CurrentValue.Models;
        if (!table.TryGetValue(model, out var route) || Candidate(model, route) is not { } primary)
        {
            return null;
        }

        var candidates = new List<ProviderCandidate> { primary };
        foreach (var fallback in route.Fallbacks)
        {
            if (table.TryGetValue(fallback, out var fallbackRoute)
                && Candidate(fallback, fallbackRoute) is { } candidate
                && !candidates.Exists(c => c.Provider == candidate.Provider && c.UpstreamModel == candidate.UpstreamModel))
            {
                candidates.Add(candidate);
            }
        }

        return candidates;
    }

    private ProviderCandidate? Candidate(string model, ModelRoute route)
    {
        if (services.GetKeyedService<IChatClient>(route.Provider) is not { } provider)
        {
            return null;
        }

        // Every provider, built-in or upstream, is cut at the request's stop sequences by the worker itself.
        var client = new StopSequenceChatClient(provider);

        return upstreamNames.Contains(route.Provider)
            ? new(model, route.Provider, client, route.UpstreamModel, upstreams.Get(route.Provider).Timeout)
            : new(model, route.Provider, client, route.UpstreamModel ?? model, null);
    }
}

/// <summary>The names of the configured OpenAI-compatible upstreams (the keys under <c>Providers:OpenAI</c>).</summary>
internal sealed class OpenAiUpstreamNames(IEnumerable<string> names)
{
    private readonly HashSet<string> _names = new(names, StringComparer.Ordinal);

    public bool Contains(string provider) => _names.Contains(provider);
}
