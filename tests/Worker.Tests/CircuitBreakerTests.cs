using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

/// <summary>
/// Real time, shifted by hand: timestamps jump when told to, while timers (delays) still run on the real clock,
/// so a circuit's break can end at once without stopping everything else that waits.
/// </summary>
public sealed class ShiftedTimeProvider : TimeProvider
{
    private long _offsetTicks;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));

    public override long GetTimestamp() =>
        System.GetTimestamp() + (long)(Interlocked.Read(ref _offsetTicks) * (TimestampFrequency / (double)TimeSpan.TicksPerSecond));
}

/// <summary>
/// The circuit breaker of an upstream's resilience pipeline, seen through the router: which attempts reach
/// the upstream, which are refused without a call, and when the circuit lets calls through again.
/// </summary>
public sealed class CircuitBreakerTests : IAsyncDisposable
{
    private static readonly ChatScript ServerError = ScriptedChatClient.Status(HttpStatusCode.InternalServerError);

    private readonly ShiftedTimeProvider _clock = new();
    private readonly ScriptedChatClient _upstream = new();
    // Unique per test: Polly's meter is shared by the whole process.
    private readonly string _provider = $"up-{Guid.NewGuid():N}";
    private ProviderPipelines? _pipelines;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_pipelines is not null)
        {
            await _pipelines.DisposeAsync();
        }
    }

    private ProviderRouter Router(int threshold = 3, bool upstream = true)
    {
        var settings = new ProviderResilienceOptions
        {
            MaxRetries = 0,
            BreakerFailureThreshold = threshold,
            BreakerBreakDuration = TimeSpan.FromSeconds(30),
        };
        _pipelines = new ProviderPipelines(new FixedOptionsMonitor<ProviderResilienceOptions>(settings),
            new OpenAiUpstreamNames(upstream ? [_provider] : []), _clock, NullLoggerFactory.Instance);
        var limits = new ProviderLimits(new FixedOptionsMonitor<OpenAiUpstreamOptions>(new OpenAiUpstreamOptions()), new OpenAiUpstreamNames([]));
        return new ProviderRouter(_pipelines, limits, NullLogger<ProviderRouter>.Instance);
    }

    /// <summary>Opens a stream through the router: null when one opened, else the refusal.</summary>
    private static async Task<ProvidersUnavailableException?> OpenAsync(ProviderRouter router, ScriptedChatClient upstream, string provider, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await router.OpenAsync("request", [new ProviderCandidate("model", provider, upstream, null, null)],
                [new ChatMessage(ChatRole.User, "hello")], new ChatOptions(), cancellationToken);
            return null;
        }
        catch (ProvidersUnavailableException refused)
        {
            return refused;
        }
    }

    private Task<ProvidersUnavailableException?> OpenAsync(ProviderRouter router, CancellationToken cancellationToken) =>
        OpenAsync(router, _upstream, _provider, cancellationToken);

    private async Task FailAsync(ProviderRouter router, int times)
    {
        _upstream.Next = ServerError;
        for (var i = 0; i < times; i++)
        {
            var calls = _upstream.Calls;
            Assert.NotNull(await OpenAsync(router, Ct));
            Assert.Equal(calls + 1, _upstream.Calls);
        }
    }

    /// <summary>Makes the next call hang until released (or cancelled); the returned task completes when it has started.</summary>
    private Task HangNextCall(Task release)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Next = ScriptedChatClient.After(async cancellationToken =>
        {
            started.TrySetResult();
            await release.WaitAsync(cancellationToken);
        });
        return started.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    [Fact]
    public async Task ItOpensAfterTheThresholdOfConsecutiveFailuresAndRefusesWhileOpen()
    {
        var router = Router();

        await FailAsync(router, 3);

        // A 500 is not worth retrying; an open circuit is: it closes again.
        var refused = await OpenAsync(router, Ct);
        Assert.NotNull(refused);
        Assert.True(refused.Transient);
        Assert.Equal(3, _upstream.Calls);
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.NotNull(await OpenAsync(router, Ct));
        Assert.Equal(3, _upstream.Calls);
    }

    [Fact]
    public async Task ASuccessResetsTheCountOfConsecutiveFailures()
    {
        var router = Router();

        await FailAsync(router, 2);
        _upstream.Next = ScriptedChatClient.Answer;
        Assert.Null(await OpenAsync(router, Ct));
        await FailAsync(router, 2);

        _upstream.Next = ScriptedChatClient.Answer;
        Assert.Null(await OpenAsync(router, Ct));
        Assert.Equal(6, _upstream.Calls);
    }

    [Fact]
    public async Task AfterTheBreakOneTrialGoesThroughAndItsSuccessClosesTheCircuit()
    {
        var router = Router();
        await FailAsync(router, 3);
        _clock.Advance(TimeSpan.FromSeconds(30));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = HangNextCall(release.Task);

        var trial = OpenAsync(router, Ct);
        await started;
        Assert.NotNull(await OpenAsync(router, Ct));
        Assert.Equal(4, _upstream.Calls);
        release.SetResult();

        Assert.Null(await trial.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Null(await OpenAsync(router, Ct));
        Assert.Equal(5, _upstream.Calls);
    }

    [Fact]
    public async Task AFailedTrialOpensTheCircuitForAnotherBreak()
    {
        var router = Router();
        await FailAsync(router, 3);
        _clock.Advance(TimeSpan.FromSeconds(31));

        await FailAsync(router, 1);

        Assert.NotNull(await OpenAsync(router, Ct));
        Assert.Equal(4, _upstream.Calls);
        _clock.Advance(TimeSpan.FromSeconds(30));
        _upstream.Next = ScriptedChatClient.Answer;
        Assert.Null(await OpenAsync(router, Ct));
        Assert.Equal(5, _upstream.Calls);
    }

    [Fact]
    public async Task ACancelledTrialLetsTheNextCallerTry()
    {
        var router = Router();
        await FailAsync(router, 3);
        _clock.Advance(TimeSpan.FromSeconds(30));
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var started = HangNextCall(Task.Delay(Timeout.Infinite, Ct));

        var trial = OpenAsync(router, cancel.Token);
        await started;
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => trial.WaitAsync(TimeSpan.FromSeconds(10), Ct));

        _upstream.Next = ScriptedChatClient.Answer;
        Assert.Null(await OpenAsync(router, Ct));
        Assert.Equal(5, _upstream.Calls);
    }

    [Fact]
    public async Task ConcurrentFailuresOpenTheCircuitExactlyOnce()
    {
        var router = Router(threshold: 50);
        var opened = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Polly" && instrument.Name == "resilience.polly.strategy.events")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((_, _, tags, _) =>
        {
            string? pipeline = null, name = null;
            foreach (var tag in tags)
            {
                pipeline = tag.Key == "pipeline.name" ? tag.Value as string : pipeline;
                name = tag.Key == "event.name" ? tag.Value as string : name;
            }

            if (pipeline == _provider && name == "OnCircuitOpened")
            {
                Interlocked.Increment(ref opened);
            }
        });
        listener.Start();
        _upstream.Next = ServerError;

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(() => OpenAsync(router, Ct), Ct)));

        Assert.All(results, Assert.NotNull);
        Assert.Equal(1, Volatile.Read(ref opened));
        var calls = _upstream.Calls;
        Assert.InRange(calls, 50, 200);
        Assert.NotNull(await OpenAsync(router, Ct));
        Assert.Equal(calls, _upstream.Calls);
    }

    [Fact]
    public async Task ARejectedRequestSaysNothingAgainstTheUpstream()
    {
        var router = Router();
        _upstream.Next = ScriptedChatClient.Status(HttpStatusCode.BadRequest);

        for (var i = 0; i < 10; i++)
        {
            var refused = await OpenAsync(router, Ct);
            Assert.NotNull(refused);
            Assert.False(refused.Transient);
        }

        Assert.Equal(10, _upstream.Calls);
    }

    [Fact]
    public async Task ABuiltInProviderHasNoCircuit()
    {
        var router = Router(upstream: false);

        await FailAsync(router, 10);

        _upstream.Next = ScriptedChatClient.Answer;
        Assert.Null(await OpenAsync(router, Ct));
        Assert.Equal(11, _upstream.Calls);
    }
}

/// <summary>The breaker inside a running worker: an upstream that keeps failing stops receiving requests until its break ends.</summary>
public sealed class UpstreamCircuitTests : ServicesFixture
{
    private readonly ShiftedTimeProvider _clock = new();
    private FakeOpenAiUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeOpenAiUpstream.StartAsync(Ct);
        await StartAsync(new Dictionary<string, string?>
        {
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00",
            ["Providers:Resilience:MaxRetries"] = "0",
            ["Providers:Resilience:BreakerFailureThreshold"] = "3",
            ["Providers:Resilience:BreakerBreakDuration"] = "00:01:00",
            ["Providers:OpenAI:flaky:Endpoint"] = _upstream.Endpoint.ToString(),
            ["Providers:OpenAI:flaky:Model"] = "m-flaky",
            ["Inference:Models:flaky:Provider"] = "flaky",
            ["Inference:Models:flaky-or-synthetic:Provider"] = "flaky",
            ["Inference:Models:flaky-or-synthetic:Fallbacks:0"] = "synthetic",
        }, gateway: false, workerServices: s => s.AddSingleton<TimeProvider>(_clock), cancellationToken: Ct);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
    }

    private async Task<List<ServerEvent>> StreamAsync(string model)
    {
        using var client = Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "circuit", model, max_tokens = 3 }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    private static string? ErrorCode(List<ServerEvent> events) =>
        events.SingleOrDefault(e => e.EventType == "error")?.Payload.GetProperty("code").GetString();

    [Fact]
    public async Task TheCircuitOpensAfterRepeatedFailuresAndTheUpstreamIsLeftAloneUntilTheBreakEnds()
    {
        _upstream.Script("m-flaky", UpstreamReply.Status(503), UpstreamReply.Status(503), UpstreamReply.Status(503), UpstreamReply.Text("back", " again"));

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(ErrorCodes.ProviderUnavailable, ErrorCode(await StreamAsync("flaky")));
        }

        Assert.Equal(3, _upstream.RequestCount("m-flaky"));

        // Open: refused without a call, or served by the fallback without a call.
        var refused = await StreamAsync("flaky");
        Assert.Equal(ErrorCodes.ProviderUnavailable, ErrorCode(refused));
        Assert.True(refused.Single(e => e.EventType == "error").Payload.GetProperty("retryable").GetBoolean());
        var fellBack = await StreamAsync("flaky-or-synthetic");
        Assert.Null(ErrorCode(fellBack));
        Assert.Equal(3, fellBack.Count(e => e.EventType == "token"));
        Assert.Equal(3, _upstream.RequestCount("m-flaky"));

        // The break ends: one trial goes through, succeeds, and closes the circuit, so the next request is served too.
        _clock.Advance(TimeSpan.FromMinutes(1));
        var trial = await StreamAsync("flaky");
        Assert.Equal("back again", trial.Text());
        Assert.Equal(4, _upstream.RequestCount("m-flaky"));
        Assert.Equal("back again", (await StreamAsync("flaky")).Text());
        Assert.Equal(5, _upstream.RequestCount("m-flaky"));
    }
}
