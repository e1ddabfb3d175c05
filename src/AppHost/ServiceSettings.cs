using Microsoft.Extensions.Configuration;
namespace VixAspire.AppHost;

internal static class ServiceSettings
{
    private const string OpenAiUpstreams = "Providers:OpenAI";
    private static readonly string[] KeySources = ["Worker", "All"];

    /// <summary>
    /// Passes the AppHost's <c>Services:{name}</c> configuration section to the service as environment
    /// variables, so a setting such as <c>Services:Worker:Providers:Synthetic:TokenDelay</c> (from
    /// appsettings, the command line or the environment) reaches the worker without a code change.
    /// <c>Services:All</c> reaches every service: the routing table (<c>Inference:Models</c>) must be the
    /// same in the API, which refuses unknown models, and in the workers, which serve them.
    /// Upstream API keys are left out: <see cref="WithProviderKeys"/> gives them to the workers alone.
    /// </summary>
    public static IResourceBuilder<T> WithServiceSettings<T>(this IResourceBuilder<T> resource, IConfiguration configuration, string name)
        where T : IResourceWithEnvironment
    {
        var section = configuration.GetSection($"Services:{name}");
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is not null && !IsProviderKey(key))
            {
                resource.WithEnvironment(key.Replace(":", "__", StringComparison.Ordinal), value);
            }
        }

        return resource;
    }

    /// <summary>
    /// One secret parameter, <c>provider-{upstream}-apikey</c>, per upstream under <c>Services:All</c> or
    /// <c>Services:Worker</c> <c>:Providers:OpenAI</c> that has a key: <c>Parameters:provider-{upstream}-apikey</c>,
    /// else the upstream's own <c>ApiKey</c>. Upstreams without a key (a local server) get none.
    /// </summary>
    public static IReadOnlyList<(string Upstream, IResourceBuilder<ParameterResource> Key)> AddProviderKeys(this IDistributedApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var upstreams = KeySources
            .SelectMany(service => configuration.GetSection($"Services:{service}:{OpenAiUpstreams}").GetChildren().Select(s => s.Key))
            .Distinct(StringComparer.OrdinalIgnoreCase);
        var keys = new List<(string, IResourceBuilder<ParameterResource>)>();
        foreach (var upstream in upstreams)
        {
            var name = $"provider-{ResourceName(upstream)}-apikey";
            var value = configuration[$"Parameters:{name}"]
                ?? configuration[$"Services:Worker:{OpenAiUpstreams}:{upstream}:ApiKey"]
                ?? configuration[$"Services:All:{OpenAiUpstreams}:{upstream}:ApiKey"];
            if (!string.IsNullOrEmpty(value))
            {
                keys.Add((upstream, builder.AddParameter(name, () => value, secret: true)));
            }
        }

        return keys;
    }

    public static IResourceBuilder<T> WithProviderKeys<T>(this IResourceBuilder<T> resource,
        IReadOnlyList<(string Upstream, IResourceBuilder<ParameterResource> Key)> keys)
        where T : IResourceWithEnvironment
    {
        foreach (var (upstream, key) in keys)
        {
            resource.WithEnvironment($"Providers__OpenAI__{upstream}__ApiKey", key);
        }

        return resource;
    }

    private static bool IsProviderKey(string key) =>
        key.StartsWith(OpenAiUpstreams + ":", StringComparison.OrdinalIgnoreCase)
        && key.EndsWith(":ApiKey", StringComparison.OrdinalIgnoreCase)
        && key.Count(c => c == ':') == 3;

    // Resource names take letters, digits and single hyphens.
    private static string ResourceName(string upstream) =>
        System.Text.RegularExpressions.Regex.Replace(upstream.ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
}
