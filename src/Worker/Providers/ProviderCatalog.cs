using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;

namespace VixAspire.Worker.Providers;

/// <summary>Resolves a public model name through the routing table to the provider's <see cref="IChatClient"/>.</summary>
internal sealed class ProviderCatalog(IServiceProvider services, IOptionsMonitor<ModelCatalogOptions> catalog)
{
    public bool TryResolve(string model, out IChatClient client, out string upstreamModel)
    {
        client = null!;
        upstreamModel = model;
        if (!catalog.CurrentValue.Models.TryGetValue(model, out var route)
            || services.GetKeyedService<IChatClient>(route.Provider) is not { } resolved)
        {
            return false;
        }

        client = resolved;
        upstreamModel = route.UpstreamModel ?? model;
        return true;
    }
}
