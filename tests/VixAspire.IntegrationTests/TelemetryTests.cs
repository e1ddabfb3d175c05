using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>Meter listeners are process-wide: this class runs alone, so the histograms count only its streams.</summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;

/// <summary>
/// Traces and metrics as OpenTelemetry's in-memory exporter receives them: one trace from the gateway through
/// the API and the Redis hand-off into the worker, and a time-to-first-token value for every stream.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class TelemetryTests(TelemetryTests.Fixture fixture) : IClassFixture<TelemetryTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public List<Activity> ApiSpans { get; } = [];

        public List<Activity> WorkerSpans { get; } = [];

        public List<Metric> ApiMetrics { get; } = [];

        public List<Metric> WorkerMetrics { get; } = [];

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00.010",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.002",
            },
            workerServices: s => s.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(WorkerSpans)).WithMetrics(m => m.AddInMemoryExporter(WorkerMetrics)),
            apiServices: s => s.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(ApiSpans)).WithMetrics(m => m.AddInMemoryExporter(ApiMetrics)));
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OneTraceSpansTheGatewayTheApiTheRedisHandOffAndTheWorker()
    {
        var apiSpanStopped = new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? id = null;
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "Microsoft.AspNetCore",
            ActivityStopped = a =>
            {
                if (id is not null && a.GetTagItem("vix.request.id") as string == id)
                {
                    apiSpanStopped.TrySetResult(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "trace me", max_tokens = 4 }), Ct);
        id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await response.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var apiSpan = await apiSpanStopped.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        fixture.Services.Workers[0].Services.GetRequiredService<TracerProvider>().ForceFlush();

        Activity[] worker;
        lock (fixture.WorkerSpans)
        {
            worker = [.. fixture.WorkerSpans.Where(a => a.Source.Name == "VixAspire.Worker" && a.GetTagItem("vix.request.id") as string == id)];
        }

        var generate = Assert.Single(worker);
        Assert.Equal(apiSpan.TraceId, generate.TraceId);
        // The worker's parent is the API's request span, carried in the queue entry's traceparent, not inherited in-process.
        Assert.Equal(apiSpan.SpanId, generate.ParentSpanId);
        Assert.NotEqual(default, apiSpan.ParentSpanId);
        Assert.Equal(["vix.queued", "gen_ai.first_token_sent", "vix.end_sent"], apiSpan.Events.Select(e => e.Name));
        Assert.Equal(["vix.picked_up", "gen_ai.first_token", "vix.end"], generate.Events.Select(e => e.Name));
        Assert.Equal("length", generate.Events.Last().Tags.Single(t => t.Key == "vix.end_reason").Value);
        Assert.Equal(ActivityKind.Consumer, generate.Kind);
    }

    [Fact]
    public async Task EveryStreamRecordsOneTimeToFirstTokenAtTheEdgeAndInTheWorker()
    {
        var apiBefore = HistogramCount(fixture.Services.Api.Services, fixture.ApiMetrics, "gen_ai.server.time_to_first_token");
        var workerBefore = HistogramCount(fixture.Services.Workers[0].Services, fixture.WorkerMetrics, "vix.worker.time_to_first_token");

        using var client = fixture.Services.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = $"measure {i}", max_tokens = 3 }), Ct);
            await response.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        Assert.Equal(apiBefore + 5, HistogramCount(fixture.Services.Api.Services, fixture.ApiMetrics, "gen_ai.server.time_to_first_token"));
        Assert.Equal(workerBefore + 5, HistogramCount(fixture.Services.Workers[0].Services, fixture.WorkerMetrics, "vix.worker.time_to_first_token"));
    }

    [Fact]
    public async Task AnOpenAiCompletionRecordsTimeToFirstTokenAndTheSameSpanEventsStreamedOrWhole()
    {
        var stopped = new ConcurrentDictionary<string, Activity>();
        var stoppedSignal = new SemaphoreSlim(0);
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "Microsoft.AspNetCore",
            ActivityStopped = a =>
            {
                if (a.GetTagItem("vix.request.id") is string requestId)
                {
                    stopped[requestId] = a;
                    stoppedSignal.Release();
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var before = HistogramCount(fixture.Services.Api.Services, fixture.ApiMetrics, "gen_ai.server.time_to_first_token");

        using var client = fixture.Services.CreateClient();
        using var streamed = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "synthetic", stream = true, max_tokens = 3, messages = new[] { new { role = "user", content = "measure streamed" } } }),
        }, Ct);
        var chunks = await streamed.Content.ReadAsStringAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        using var whole = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "synthetic", max_tokens = 3, messages = new[] { new { role = "user", content = "measure whole" } } }, Ct);
        var completion = await whole.Content.ReadFromJsonAsync<JsonElement>(Ct);

        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.EndsWith("data: [DONE]\n\n", chunks, StringComparison.Ordinal);
        Assert.Equal(before + 2, HistogramCount(fixture.Services.Api.Services, fixture.ApiMetrics, "gen_ai.server.time_to_first_token"));
        var streamedId = JsonDocument.Parse(chunks.Split('\n')[0]["data: ".Length..]).RootElement.GetProperty("id").GetString()!;
        foreach (var id in new[] { streamedId, completion.GetProperty("id").GetString()! })
        {
            var span = await StoppedSpanAsync(stopped, stoppedSignal, id["chatcmpl-".Length..]);
            Assert.Equal(["vix.queued", "gen_ai.first_token_sent", "vix.end_sent"], span.Events.Select(e => e.Name));
        }
    }

    private static async Task<Activity> StoppedSpanAsync(ConcurrentDictionary<string, Activity> stopped, SemaphoreSlim signal, string id)
    {
        Activity? span;
        while (!stopped.TryGetValue(id, out span))
        {
            if (!await signal.WaitAsync(TimeSpan.FromSeconds(30), Ct))
            {
                throw new TimeoutException($"The API span of request {id} did not stop.");
            }
        }

        return span;
    }

    /// <summary>Flushes the host's meter provider into its in-memory exporter and reads the latest cumulative count.</summary>
    private static long HistogramCount(IServiceProvider services, List<Metric> exported, string name)
    {
        lock (exported)
        {
            exported.Clear();
        }

        services.GetRequiredService<MeterProvider>().ForceFlush();
        lock (exported)
        {
            long count = 0;
            foreach (var metric in exported.Where(m => m.Name == name))
            {
                foreach (ref readonly var point in metric.GetMetricPoints())
                {
                    count += point.GetHistogramCount();
                }
            }

            return count;
        }
    }
}
