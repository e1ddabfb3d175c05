using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace VixAspire.Worker.Providers;

/// <summary>
/// How many generations this worker streams from each OpenAI-compatible upstream at once
/// (<see cref="OpenAiUpstreamOptions.MaxConcurrency"/>): a GPU server serves so many sequences well and queues the
/// rest itself, later and worse. Generations past the figure wait here, oldest first, under their first-token
/// timeout. Synthetic providers have no figure of their own: only <see cref="WorkerOptions.MaxConcurrency"/> bounds them.
/// </summary>
internal sealed class ProviderLimits(IOptionsMonitor<OpenAiUpstreamOptions> upstreams, OpenAiUpstreamNames upstreamNames) : IDisposable
{
    private readonly ConcurrentDictionary<string, ConcurrencyLimiter> _limiters = new(StringComparer.Ordinal);

    /// <summary>A lease to hold while streaming from <paramref name="provider"/>, or null for a provider without a limit.</summary>
    public async ValueTask<RateLimitLease?> AcquireAsync(string provider, CancellationToken cancellationToken)
    {
        if (!upstreamNames.Contains(provider))
        {
            return null;
        }

        var limiter = _limiters.GetOrAdd(provider, static (name, options) => new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = options.Get(name).MaxConcurrency,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }), upstreams);
        return await limiter.AcquireAsync(1, cancellationToken);
    }

    public void Dispose()
    {
        foreach (var limiter in _limiters.Values)
        {
            limiter.Dispose();
        }
    }
}
