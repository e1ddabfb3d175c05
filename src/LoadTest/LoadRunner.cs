using System.Net.Http.Json;
using System.Runtime.CompilerServices;

namespace VixAspire.LoadTest;

/// <summary>
/// Runs the streams of one load test: <see cref="LoadTestSettings.Concurrency"/> workers take stream numbers
/// in order, each waiting for its arrival time when a rate is set, until every stream has run, the duration
/// is over or the run is cancelled. Cancelling stops the streams in flight and still returns a report.
/// </summary>
internal sealed class LoadRunner(HttpClient http, LoadTestSettings settings, LoadTestMetrics? metrics = null, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    public static HttpClient CreateHttpClient(Uri baseAddress) => new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    })
    {
        BaseAddress = baseAddress,
        // A stream lasts as long as the server lets it; the run's cancellation is what stops it early.
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public async Task<LoadReport> RunAsync(Action<LoadProgress>? onProgress, CancellationToken cancellationToken)
    {
        await WarmUpAsync(cancellationToken);
        var report = new ReportBuilder(settings);
        var started = _time.GetTimestamp();
        var next = new StrongBox<int>(-1);
        var workers = Enumerable.Range(0, Math.Min(settings.Concurrency, settings.Streams))
            .Select(_ => WorkAsync(next, started, report, onProgress, cancellationToken))
            .ToArray();
        await Task.WhenAll(workers);
        return report.Build(_time.GetElapsedTime(started), cancellationToken.IsCancellationRequested);
    }

    /// <summary>
    /// <see cref="LoadTestSettings.WarmupStreams"/> streams at the run's concurrency, not counted: the first streams of
    /// a process pay for its JIT and its connections, which are the tool's costs, not the server's latency.
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        var next = new StrongBox<int>(-1);
        var workers = Enumerable.Range(0, Math.Min(settings.Concurrency, settings.WarmupStreams)).Select(async _ =>
        {
            while (!cancellationToken.IsCancellationRequested && Interlocked.Increment(ref next.Value) is var index && index < settings.WarmupStreams)
            {
                await RunStreamAsync(index, cancellationToken);
            }
        });
        await Task.WhenAll(workers);
    }

    private async Task WorkAsync(StrongBox<int> next, long runStarted, ReportBuilder report, Action<LoadProgress>? onProgress, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var index = Interlocked.Increment(ref next.Value);
            if (index >= settings.Streams)
            {
                return;
            }

            var due = settings.Rate > 0 ? TimeSpan.FromSeconds(index / settings.Rate) : TimeSpan.Zero;
            if (settings.Duration is { } limit && due >= limit)
            {
                return;
            }

            var wait = due - _time.GetElapsedTime(runStarted);
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (settings.Duration is { } duration && _time.GetElapsedTime(runStarted) >= duration)
            {
                return;
            }

            var result = await RunStreamAsync(index, cancellationToken);
            metrics?.Record(result, settings.Model);
            var progress = report.Add(result);
            onProgress?.Invoke(progress);
        }
    }

    private async Task<StreamResult> RunStreamAsync(int index, CancellationToken cancellationToken)
    {
        var validator = new StreamValidator(index, _time.GetTimestamp(), _time);
        try
        {
            var body = new InferenceBody(settings.PromptFor(index), settings.Model, settings.MaxTokens);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/infer/stream")
            {
                Content = JsonContent.Create(body, LoadTestJson.Default.InferenceBody),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return validator.Fail(FailureKinds.Http((int)response.StatusCode));
            }

            if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                return validator.Fail(FailureKinds.NotEventStream);
            }

            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            return await validator.ReadAsync(stream, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return validator.Result(interrupted: true);
        }
#pragma warning disable CA1031 // Whatever goes wrong with one stream is counted by kind; the run goes on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return validator.Fail(FailureKinds.Exception(ex));
        }
    }
}
