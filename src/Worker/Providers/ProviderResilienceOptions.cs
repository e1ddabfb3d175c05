using System.ComponentModel.DataAnnotations;

namespace VixAspire.Worker.Providers;

/// <summary>Retry, fallback and circuit-breaker settings for providers, applied only before the first token.</summary>
public sealed class ProviderResilienceOptions
{
    public const string SectionName = "Providers:Resilience";

    /// <summary>Retries of one provider after a transient failure (429, 503, timeout, connection reset), before its fallbacks.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Base of the exponential backoff; waits are jittered around base × 2^retry (Polly's decorrelated jitter).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A <c>Retry-After</c> up to this long is waited for; a longer one moves on to the next fallback.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Failures of one upstream that open its circuit, when no attempt within <see cref="BreakerSamplingDuration"/>
    /// succeeded. Failures that say nothing about the upstream's health (a refused request) count as successes.
    /// </summary>
    [Range(2, 1000)]
    public int BreakerFailureThreshold { get; set; } = 5;

    /// <summary>The window in which the threshold of failures, and no success, opens the circuit.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit skips its upstream before letting one trial request through.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan BreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(30);
}
