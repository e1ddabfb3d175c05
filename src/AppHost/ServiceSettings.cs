using Microsoft.Extensions.Configuration;
namespace VixAspire.AppHost;

internal static class ServiceSettings
{
    /// <summary>
    /// Passes the AppHost's <c>Services:{name}</c> configuration section to the service as environment
    /// variables, so a setting such as <c>Services:Worker:Providers:Synthetic:TokenDelay</c> (from
    /// appsettings, the command line or the environment) reaches the worker without a code change.
    /// <c>Services:All</c> reaches every service: the routing table (<c>Inference:Models</c>) must be the
    /// same in the API, which refuses unknown models, and in the workers, which serve them.
    /// </summary>
    public static IResourceBuilder<T> WithServiceSettings<T>(this IResourceBuilder<T> resource, IConfiguration configuration, string name)
        where T : IResourceWithEnvironment
    {
        var section = configuration.GetSection($"Services:{name}");
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is not null)
            {
                resource.WithEnvironment(key.Replace(":", "__", StringComparison.Ordinal), value);
            }
        }

        return resource;
    }
}
