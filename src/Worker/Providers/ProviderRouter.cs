using System.Diagnostics;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Opens a response stream for a request: tries the route's provider, then each fallback, retrying transient
/// failures with backoff, until one of them yields its first token. Nothing is written to the client in here,
/// which is what makes retry and fallback safe; once a stream is returned, its failures are final.
/// </summary>
internal sealed class ProviderRouter(
    IOptionsMonitor<ProviderResilienceOptions> resilience,
    TimeProvider time,
    ILogger<ProviderRouter> logger)
{
    /// <summary>
    /// Returns a stream positioned just after its first text update (or at its end, when a provider finished
    /// without text). Throws <see cref="ProvidersUnavailableException"/> when every candidate failed, and
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task<OpenedStream> OpenAsync(string requestId, IReadOnlyList<ProviderCandidate> candidates,
        IList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var settings = resilience.CurrentValue;
        var transient = false;
        for (var i = 0; i < candidates.Count; i++)
        {
            var candidate = candidates[i];
            if (i > 0)
            {
                Log.FallingBack(logger, requestId, candidates[i - 1].Model, candidate.Model);
                Activity.Current?.AddEvent(new ActivityEvent("vix.fallback", tags: new ActivityTagsCollection { ["vix.model"] = candidate.Model }));
            }

            for (var retry = 0; ; retry++)
            {
                var (stream, failure) = await TryOpenAsync(requestId, candidate, messages, options, cancellationToken);
                if (stream is not null)
                {
                    return stream;
                }

                transient |= failure.Retryable || failure.Kind == FailureKind.CircuitOpen;
                if (!failure.Retryable || retry >= settings.MaxRetries)
                {
                    break;
                }

                var delay = failure.RetryAfter ?? Backoff(settings, retry);
                if (delay > settings.MaxRetryAfter && failure.RetryAfter is not null)
                {
                    // The upstream asks for a longer pause than a waiting client should sit through.
                    break;
                }

                Log.RetryingProvider(logger, requestId, candidate.Provider, retry + 1, delay.TotalMilliseconds);
                await Task.Delay(delay, time, cancellationToken);
            }
        }

        throw new ProvidersUnavailableException(transient);
    }

    private async Task<(OpenedStream? Stream, ProviderFailure Failure)> TryOpenAsync(string requestId, ProviderCandidate candidate,
        IList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var breaker = candidate.Breaker;
        if (breaker is not null && !breaker.TryAcquire())
        {
            Log.CircuitOpenSkipped(logger, requestId, candidate.Provider);
            return (null, new ProviderFailure(FailureKind.CircuitOpen, null, null));
        }

        var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (candidate.AttemptTimeout is { } timeout)
        {
            attempt.CancelAfter(timeout);
        }

        var attemptOptions = options.Clone();
        attemptOptions.ModelId = candidate.UpstreamModel;
        IAsyncEnumerator<ChatResponseUpdate>? updates = null;
        try
        {
            updates = candidate.Client.GetStreamingResponseAsync(messages, attemptOptions, attempt.Token).GetAsyncEnumerator(attempt.Token);
            var buffered = new List<ChatResponseUpdate>(1);
            var ended = true;
            while (await updates.MoveNextAsync())
            {
                // The first chunk ends the attempt's timeout; from here the first-token timeout alone applies.
                attempt.CancelAfter(Timeout.InfiniteTimeSpan);
                buffered.Add(updates.Current);
                if (updates.Current.Text.Length > 0)
                {
                    ended = false;
                    break;
                }
            }

            if (breaker?.RecordSuccess() == true)
            {
                Log.CircuitClosed(logger, candidate.Provider);
            }

            Activity.Current?.SetTag("vix.provider", candidate.Provider);
            return (new OpenedStream(updates, attempt, buffered, ended), default);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            var failure = ProviderFailure.Classify(ex, attempt.IsCancellationRequested);
            Log.ProviderAttemptFailed(logger, ex, requestId, candidate.Provider, failure.Kind.ToString(), failure.Status ?? 0);
            if (breaker is not null)
            {
                if (!failure.CountsAgainstUpstream)
                {
                    // It answered: alive, whatever it thought of this request.
                    breaker.RecordSuccess();
                }
                else if (breaker.RecordFailure())
                {
                    Log.CircuitOpened(logger, candidate.Provider);
                }
            }

            await DisposeQuietlyAsync(updates);
            attempt.Dispose();
            return (null, failure);
        }
        catch (Exception ex)
        {
            breaker?.Release();
            await DisposeQuietlyAsync(updates);
            attempt.Dispose();
            if (ex is not OperationCanceledException)
            {
                // A failure caused by our own cancellation (the connection torn down under it) is that cancellation.
                throw new OperationCanceledException("The request was cancelled while its provider was called.", ex, cancellationToken);
            }

            throw;
        }
    }

    /// <summary>Exponential backoff with full jitter: a random wait up to base × 2^retry, capped.</summary>
    private static TimeSpan Backoff(ProviderResilienceOptions settings, int retry)
    {
        var ceiling = Math.Min(settings.MaxDelay.TotalMilliseconds, settings.BaseDelay.TotalMilliseconds * Math.Pow(2, retry));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling);
    }

    private static async ValueTask DisposeQuietlyAsync(IAsyncEnumerator<ChatResponseUpdate>? updates)
    {
        if (updates is null)
        {
            return;
        }

        try
        {
            await updates.DisposeAsync();
        }
        catch (Exception)
        {
            // The attempt already failed; a second failure while closing it adds nothing.
        }
    }
}

/// <summary>A provider's response whose first text update has arrived (or that ended without text).</summary>
internal sealed class OpenedStream(
    IAsyncEnumerator<ChatResponseUpdate> updates, CancellationTokenSource attempt, List<ChatResponseUpdate> buffered, bool ended)
    : IAsyncDisposable
{
    /// <summary>The updates already read, then the rest of the response. Cancellation is the token the stream was opened with.</summary>
    public async IAsyncEnumerable<ChatResponseUpdate> ReadAllAsync()
    {
        foreach (var update in buffered)
        {
            yield return update;
        }

        if (ended)
        {
            yield break;
        }

        while (await updates.MoveNextAsync())
        {
            yield return updates.Current;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await updates.DisposeAsync();
        }
        catch (Exception)
        {
            // Closing an abandoned or broken response: whatever the stream's outcome was, it is already decided.
        }
        finally
        {
            attempt.Dispose();
        }
    }
}

/// <summary>Every provider of a route failed, or was skipped, before sending a token.</summary>
internal sealed class ProvidersUnavailableException(bool transient) : Exception("No provider of the route could serve the request.")
{
    /// <summary>At least one failure was transient (rate limit, overload, timeout, open circuit): trying later may work.</summary>
    public bool Transient => transient;
}
