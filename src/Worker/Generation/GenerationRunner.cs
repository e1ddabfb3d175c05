using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Generation;

/// <summary>What should become of a request's queue entry once its run is over; the entry's owner settles it.</summary>
internal enum RunOutcome
{
    /// <summary>The stream is complete (or the entry cannot be run): acknowledge and delete the entry.</summary>
    Done,

    /// <summary>Stopped before the first token: queue the request again, then acknowledge the entry.</summary>
    HandBack,

    /// <summary>The stream may lack its end: leave the entry pending for whoever claims it.</summary>
    LeavePending,
}

/// <summary>How the provider's part of a run ended: with the stream's end reason, or before any token, to be handed back.</summary>
internal readonly record struct Generated(string Reason, int Tokens, bool HandBack, long? InputTokens = null)
{
    /// <summary>Stopped before the first token (the worker shuts down): another worker can run it from the start.</summary>
    public static Generated HandedBack => new(RunReasons.Unsettled, 0, HandBack: true);

    public static Generated Ended(string reason, int tokens) => new(reason, tokens, HandBack: false);

    public static Generated Ended(string reason, AnswerWriter answer) => new(reason, answer.OutputTokens, HandBack: false, answer.InputTokens);
}

/// <summary>
/// Runs one queued request: resolves its provider, streams the provider's output into the request's token
/// stream, and always ends that stream with exactly one <c>end</c> entry (after an <c>error</c> entry when
/// something failed), whatever happens: cancellation, timeouts, caps, provider failures or shutdown. It does
/// not touch the queue entry: it says what should become of it.
/// </summary>
internal sealed class GenerationRunner(
    IConnectionMultiplexer redis,
    ProviderCatalog providers,
    ProviderRouter router,
    CancellationRegistry cancellations,
    IOptionsMonitor<StreamingOptions> streaming,
    WorkerTelemetry telemetry,
    StreamFlusher flusher,
    ILogger<GenerationRunner> logger)
{
    /// <summary>Runs <paramref name="queued"/>; never throws.</summary>
    public async Task<RunOutcome> RunAsync(QueuedRequest queued, CancellationToken stoppingToken)
    {
        var db = redis.GetDatabase();
        var id = queued.RequestId;
        if (!TryParse(queued, out var request))
        {
            Log.MalformedRequest(logger, queued.EntryId.ToString());
            return RunOutcome.Done;
        }

        ActivityContext.TryParse(queued.TraceParent, queued.TraceState, out var parent);
        using var activity = WorkerTelemetry.Source.StartActivity(ActivityKind.Consumer, parent,
            [new("gen_ai.request.model", request.Model), new("gen_ai.request.max_tokens", request.MaxTokens), new("vix.request.id", id)],
            name: $"generate {request.Model}");
        activity?.AddEvent(new ActivityEvent("vix.picked_up"));

        var limits = streaming.CurrentValue;
        var reason = RunReasons.Unsettled;
        var tokens = 0;
        long? inputTokens = null;
        var pickedUp = Stopwatch.GetTimestamp();
        telemetry.GenerationStarted();
        // Registered before the take, which reads the cancelled flag: a DELETE is seen by one or the other.
        using var cancelled = new CancellationTokenSource();
        using var registration = cancellations.Register(id, cancelled);
        try
        {
            var taken = await TokenStreamWriter.TakeAsync(flusher, id, limits);
            if (taken.Writer is not { } writer)
            {
                // Ended already (an entry whose worker died between the end and its acknowledgement), or gone: expired while it
                // waited, or lost with Redis's data. Nobody could read what a provider would say.
                reason = taken.Ended ? RunReasons.AlreadyEnded : EndReasons.Cancelled;
                if (!taken.Ended)
                {
                    Log.StreamGone(logger, id);
                }

                await ReleaseClientSlotAsync(db, queued);
                return RunOutcome.Done;
            }

            await using (writer)
            {
                if (taken.LastEvent != EventNames.Start)
                {
                    // An earlier run sent tokens (or an error): its text cannot be continued by another run.
                    reason = await EndLostRunAsync(writer, taken.LastEvent);
                }
                else if (taken.Cancelled || cancelled.IsCancellationRequested)
                {
                    reason = EndReasons.Cancelled;
                }
                else
                {
                    var generated = await GenerateAsync(id, request, writer, limits, cancelled, stoppingToken);
                    (reason, tokens, inputTokens) = (generated.Reason, generated.Tokens, generated.InputTokens);
                    if (generated.HandBack)
                    {
                        // Shutting down before the first token: another worker can run it from the start.
                        Log.HandedOver(logger, id);
                        return RunOutcome.HandBack;
                    }
                }

                await writer.CompleteAsync(reason, tokens, inputTokens);
                if (writer.Fenced)
                {
                    // Claimed by another worker while this one stalled: the entry is that worker's to settle.
                    Log.Fenced(logger, id);
                    reason = RunReasons.Fenced;
                    return RunOutcome.LeavePending;
                }

                Log.GenerationEnded(logger, id, reason, tokens);
                await ReleaseClientSlotAsync(db, queued);
                return RunOutcome.Done;
            }
        }
        catch (Exception ex) when (ex is RedisException or ChannelClosedException or TimeoutException)
        {
            // The stream may lack its end: whoever claims the entry ends the stream (worker_lost) or, if no
            // token was sent, runs it again.
            Log.StreamWriteFailed(logger, ex, id);
            return RunOutcome.LeavePending;
        }
        finally
        {
            telemetry.GenerationEnded(request.Model, tokens, reason, Stopwatch.GetElapsedTime(pickedUp));
        }
    }

    /// <summary>Runs the provider: to an end reason, or to a hand-back when the worker shuts down before any token.</summary>
    private async Task<Generated> GenerateAsync(string id, InferenceRequest request, TokenStreamWriter writer,
        StreamingOptions limits, CancellationTokenSource cancelled, CancellationToken stoppingToken)
    {
        using var deadline = new CancellationTokenSource(limits.MaxDuration);
        using var firstToken = new CancellationTokenSource(limits.FirstTokenTimeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(
            stoppingToken, cancelled.Token, deadline.Token, firstToken.Token, writer.CancelledInRedis);

        if (providers.Resolve(request.Model) is not { } candidates)
        {
            await ReportErrorAsync(writer, ErrorCodes.ModelUnavailable, $"No provider serves model '{request.Model}'.", retryable: false);
            return Generated.Ended(EndReasons.Error, 0);
        }

        var messages = ChatRequestMapping.ToChatMessages(request);
        var options = ChatRequestMapping.ToChatOptions(request);
        var started = Stopwatch.GetTimestamp();
        long firstTokenAt = 0;
        var updates = 0;
        var answer = new AnswerWriter(writer, limits);
        try
        {
            // Retries and fallbacks happen in here, before the first token; after it, a failure is final.
            await using var opened = await router.OpenAsync(id, candidates, messages, options, linked.Token);
            await foreach (var update in opened.ReadAllAsync())
            {
                var wrote = await answer.WriteAsync(update, linked.Token);
                if (wrote && updates++ == 0)
                {
                    firstToken.CancelAfter(Timeout.InfiniteTimeSpan);
                    firstTokenAt = Stopwatch.GetTimestamp();
                    telemetry.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(started, firstTokenAt));
                }

                if (answer.Stop is { } stop)
                {
                    if (stop.Error is { } error)
                    {
                        await ReportErrorAsync(writer, ErrorCodes.ProviderError, error, retryable: false);
                    }

                    return Generated.Ended(stop.Reason, answer);
                }

                if (!wrote)
                {
                    continue;
                }

                if (!writer.IsOpen)
                {
                    // The stream was removed under us (expired or deleted): nobody can read further tokens.
                    return Generated.Ended(EndReasons.Cancelled, answer);
                }

                if (answer.CountedUpdates >= request.MaxTokens)
                {
                    // The update that reached the limit may also be the provider's last (a stop sequence cut there).
                    return Generated.Ended(answer.Finish is null ? EndReasons.Length : answer.EndReason, answer);
                }
            }

            return Generated.Ended(answer.EndReason, answer);
        }
        catch (ProvidersUnavailableException ex)
        {
            Log.ProvidersUnavailable(logger, id, request.Model);
            await ReportErrorAsync(writer, ErrorCodes.ProviderUnavailable, "No model provider could serve the request.", retryable: ex.Transient);
            return Generated.Ended(EndReasons.Error, 0);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            if (cancelled.IsCancellationRequested || writer.CancelledInRedis.IsCancellationRequested)
            {
                return Generated.Ended(EndReasons.Cancelled, answer);
            }

            if (firstToken.IsCancellationRequested && updates == 0)
            {
                await ReportErrorAsync(writer, ErrorCodes.ProviderTimeout,
                    $"The provider sent no token within {limits.FirstTokenTimeout.TotalSeconds:0.###} s.", retryable: true);
                return Generated.Ended(EndReasons.Error, answer);
            }

            if (deadline.IsCancellationRequested)
            {
                return Generated.Ended(EndReasons.Timeout, answer);
            }

            if (updates == 0)
            {
                return Generated.HandedBack;
            }

            await ReportErrorAsync(writer, ErrorCodes.WorkerShutdown, "The worker shut down during generation; retry the request.", retryable: true);
            return Generated.Ended(EndReasons.Error, answer);
        }
        catch (Exception ex) when (ex is not RedisException)
        {
            // Includes a client library's own timeout (an OperationCanceledException none of our tokens caused).
            // Provider details stay in the logs: clients get a stable code and a message that leaks nothing.
            Log.ProviderFailed(logger, ex, id);
            await ReportErrorAsync(writer, ErrorCodes.ProviderError, "The model provider failed while generating.", retryable: updates == 0);
            return Generated.Ended(EndReasons.Error, answer);
        }
        finally
        {
            if (updates > 1)
            {
                telemetry.RecordTimePerOutputToken(Stopwatch.GetElapsedTime(firstTokenAt) / (updates - 1));
            }
        }
    }

    /// <summary>
    /// Frees the slot the request holds in its client's count of running generations, now that its stream has ended.
    /// A separate command: the client's key lives on another cluster slot than the request's. Best effort, since the
    /// slot's score is its deadline: one not freed here drops out then.
    /// </summary>
    private async Task ReleaseClientSlotAsync(IDatabase db, QueuedRequest queued)
    {
        if (string.IsNullOrEmpty(queued.Client))
        {
            return;
        }

        try
        {
            await db.SortedSetRemoveAsync(RedisKeys.ClientStreams(queued.Client), queued.RequestId);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.ClientSlotReleaseFailed(logger, ex, queued.RequestId);
        }
    }

    /// <summary>
    /// A stream an earlier run wrote to and left without its end (its worker died or lost Redis): it ends with
    /// <c>worker_lost</c> then <c>end</c>, since its text cannot be continued.
    /// </summary>
    private async Task<string> EndLostRunAsync(TokenStreamWriter writer, string lastEvent)
    {
        if (lastEvent != EventNames.Error)
        {
            await ReportErrorAsync(writer, ErrorCodes.WorkerLost, "The worker running this request stopped; retry the request.", retryable: true);
        }

        return EndReasons.Error;
    }

    private async Task ReportErrorAsync(TokenStreamWriter writer, string code, string message, bool retryable)
    {
        telemetry.Error(code);
        await writer.AppendErrorAsync(code, message, retryable);
    }

    private static bool TryParse(QueuedRequest queued, out InferenceRequest request)
    {
        request = null!;
        if (string.IsNullOrEmpty(queued.RequestId) || queued.Body.IsEmpty)
        {
            return false;
        }

        try
        {
            request = InferenceRequest.FromUtf8Json(queued.Body.Span)!;
        }
        catch (JsonException)
        {
            return false;
        }

        return request is { Messages.Count: > 0, Model: not null };
    }
}
