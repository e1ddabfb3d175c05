using System.Diagnostics;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Opens a response stream for a request: tries the route's provider, then each fallback, each through its
/// resilience pipeline (retries, circuit breaker), until one of them yields its first token. Nothing is written
/// to the client in here, which is what makes retry and fallback safe; once a stream is returned, its failures
/// are final.
/// </summary>
internal sealed class ProviderRouter(ProviderPipelines pipelines, ProviderLimits limits, ILogger<ProviderRouter> logger)
{
    /// <summary>
    /// Returns a stream positioned just after its first update with answer content (text, reasoning, a tool call;
    /// or at its end, when a provider finished without any). Throws <see cref="ProvidersUnavailableException"/> when every candidate failed, and
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task<OpenedStream> OpenAsync(string requestId, IReadOnlyList<ProviderCandidate> candidates,
        IList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var request = new OpenRequest(requestId, messages, options);
        for (var i = 0; i < candidates.Count; i++)
        {
            request.Candidate = candidates[i];
            if (i > 0)
            {
                Log.FallingBack(logger, requestId, candidates[i - 1].Model, request.Candidate.Model);
                Activity.Current?.AddEvent(new ActivityEvent("vix.fallback", tags: new ActivityTagsCollection { ["vix.model"] = request.Candidate.Model }));
            }

            // Held for the stream's whole life (the stream releases it), across this candidate's retries.
            var lease = await limits.AcquireAsync(request.Candidate.Provider, cancellationToken);
            // No operation key: Polly tags its metrics with it, and a request id would make one series per request.
            var context = ResilienceContextPool.Shared.Get(cancellationToken);
            try
            {
                var attempt = await pipelines.For(request.Candidate.Provider).ExecuteAsync(
                    static (context, state) => state.Router.TryOpenAsync(state.Request, context.CancellationToken), context, (Router: this, Request: request));
                if (attempt.Stream is { } stream)
                {
                    stream.Hold(lease);
                    lease = null;
                    return stream;
                }
            }
            catch (BrokenCircuitException)
            {
                Log.CircuitOpenSkipped(logger, requestId, request.Candidate.Provider);
                request.Transient = true;
            }
            finally
            {
                ResilienceContextPool.Shared.Return(context);
                lease?.Dispose();
            }
        }

        throw new ProvidersUnavailableException(request.Transient);
    }

    private async ValueTask<ProviderAttempt> TryOpenAsync(OpenRequest request, CancellationToken cancellationToken)
    {
        var candidate = request.Candidate!;
        var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (candidate.AttemptTimeout is { } timeout)
        {
            attempt.CancelAfter(timeout);
        }

        var attemptOptions = request.Options.Clone();
        attemptOptions.ModelId = candidate.UpstreamModel;
        IAsyncEnumerator<ChatResponseUpdate>? updates = null;
        try
        {
            updates = candidate.Client.GetStreamingResponseAsync(request.Messages, attemptOptions, attempt.Token).GetAsyncEnumerator(attempt.Token);
            var buffered = new List<ChatResponseUpdate>(1);
            var ended = true;
            while (await updates.MoveNextAsync())
            {
                // The first chunk ends the attempt's timeout; from here the first-token timeout alone applies.
                attempt.CancelAfter(Timeout.InfiniteTimeSpan);
                buffered.Add(updates.Current);
                if (AnswerContent.Carries(updates.Current))
                {
                    ended = false;
                    break;
                }
            }

            Activity.Current?.SetTag("vix.provider", candidate.Provider);
            return new(new OpenedStream(updates, attempt, buffered, ended), null);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            var failure = ProviderFailure.Classify(ex, attempt.IsCancellationRequested);
            Log.ProviderAttemptFailed(logger, ex, request.RequestId, candidate.Provider, failure.Kind.ToString(), failure.Status ?? 0);
            request.Transient |= failure.Retryable;
            await DisposeQuietlyAsync(updates);
            attempt.Dispose();
            return new(null, failure);
        }
        catch (Exception ex)
        {
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
    private IDisposable? _lease;

    /// <summary>Keeps <paramref name="lease"/> (the provider's concurrency slot) until the stream is disposed.</summary>
    public void Hold(IDisposable? lease) => _lease = lease;

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
            _lease?.Dispose();
        }
    }
}

/// <summary>One request's way through its candidates: what each attempt needs, and whether any failure was transient.</summary>
internal sealed class OpenRequest(string requestId, IList<ChatMessage> messages, ChatOptions options)
{
    public string RequestId => requestId;

    public IList<ChatMessage> Messages => messages;

    public ChatOptions Options => options;

    public ProviderCandidate? Candidate { get; set; }

    /// <summary>Some attempt failed transiently (rate limit, overload, timeout, connection) or met an open circuit.</summary>
    public bool Transient { get; set; }
}

/// <summary>Every provider of a route failed, or was skipped, before sending a token.</summary>
internal sealed class ProvidersUnavailableException(bool transient) : Exception("No provider of the route could serve the request.")
{
    /// <summary>At least one failure was transient (rate limit, overload, timeout, open circuit): trying later may work.</summary>
    public bool Transient => transient;
}
