using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Registry;
using Polly.Retry;
using Polly.Telemetry;

namespace VixAspire.Worker.Providers;

/// <summary>What one attempt to open a provider's stream came to: the stream, or the failure that stopped it.</summary>
internal readonly record struct ProviderAttempt(OpenedStream? Stream, ProviderFailure? Failure);

/// <summary>
/// One resilience pipeline per provider, from a registry keyed by provider name, shared by all of a worker's
/// generations. It wraps the step that lasts until a provider's first token: retries of transient failures,
/// after the upstream's <c>Retry-After</c> or a jittered exponential backoff, and for configured upstreams a
/// circuit breaker, which an attempt passes through on every try.
/// </summary>
internal sealed class ProviderPipelines : IAsyncDisposable
{
    private readonly ResiliencePipelineRegistry<string> _registry = new();
    private readonly Action<ResiliencePipelineBuilder<ProviderAttempt>, ConfigureBuilderContext<string>> _configure;
    private readonly IOptionsMonitor<ProviderResilienceOptions> _options;
    private readonly OpenAiUpstreamNames _upstreams;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;

    public ProviderPipelines(IOptionsMonitor<ProviderResilienceOptions> options, OpenAiUpstreamNames upstreams, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options;
        _upstreams = upstreams;
        _time = time;
        _loggers = loggers;
        _configure = Configure;
    }

    public ResiliencePipeline<ProviderAttempt> For(string provider) => _registry.GetOrAddPipeline(provider, _configure);

    private void Configure(ResiliencePipelineBuilder<ProviderAttempt> builder, ConfigureBuilderContext<string> context)
    {
        // A changed configuration rebuilds the pipeline (and starts its circuit afresh).
        context.EnableReloads(_options);
        var settings = _options.CurrentValue;
        builder.TimeProvider = _time;
        builder.ConfigureTelemetry(ResilienceTelemetry.Quiet(new TelemetryOptions { LoggerFactory = _loggers }));
        if (settings.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<ProviderAttempt>
            {
                MaxRetryAttempts = settings.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.BaseDelay,
                MaxDelay = settings.MaxDelay,
                // A Retry-After longer than a waiting client should sit through is not retried: the next fallback is tried.
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Result.Failure is { Retryable: true } failure && !(failure.RetryAfter > settings.MaxRetryAfter)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result.Failure?.RetryAfter),
            });
        }

        if (_upstreams.Contains(context.PipelineKey))
        {
            // Every call in the sampling window failed, and at least the threshold of them: as near to "this many
            // failures in a row" as Polly's ratio-based breaker comes.
            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<ProviderAttempt>
            {
                FailureRatio = 1.0,
                MinimumThroughput = settings.BreakerFailureThreshold,
                SamplingDuration = settings.BreakerSamplingDuration,
                BreakDuration = settings.BreakerBreakDuration,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result.Failure is { CountsAgainstUpstream: true }),
            });
        }
    }

    public ValueTask DisposeAsync() => _registry.DisposeAsync();
}
