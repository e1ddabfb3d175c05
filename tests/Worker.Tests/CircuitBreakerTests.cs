using System.Net;
using Microsoft.Extensions.DependencyInjection;
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

public sealed class CircuitBreakerTests
{
    private readonly ShiftedTimeProvider _clock = new();

    private CircuitBreaker Breaker(int threshold = 3) => new(threshold, TimeSpan.FromSeconds(30), _clock);

    private static void Fail(CircuitBreaker breaker, int times)
    {
        for (var i = 0; i < times; i++)
        {
            Assert.True(breaker.TryAcquire());
            breaker.RecordFailure();
        }
    }

    [Fact]
    public void ItOpensAfterTheThresholdOfConsecutiveFailuresAndRefusesWhileOpen()
    {
        var breaker = Breaker();

        Fail(breaker, 2);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.True(breaker.TryAcquire());
        Assert.True(breaker.RecordFailure());

        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.False(breaker.TryAcquire());
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.False(breaker.TryAcquire());
    }

    [Fact]
    public void ASuccessResetsTheCountOfConsecutiveFailures()
    {
        var breaker = Breaker();

        Fail(breaker, 2);
        breaker.RecordSuccess();
        Fail(breaker, 2);

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.True(breaker.TryAcquire());
    }

    [Fact]
    public void AfterTheBreakOneTrialGoesThroughAndItsSuccessClosesTheCircuit()
    {
        var breaker = Breaker();
        Fail(breaker, 3);

        _clock.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.True(breaker.TryAcquire());
        Assert.False(breaker.TryAcquire());
        Assert.True(breaker.RecordSuccess());
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.True(breaker.TryAcquire());
    }

    [Fact]
    public void AFailedTrialOpensTheCircuitForAnotherBreak()
    {
        var breaker = Breaker();
        Fail(breaker, 3);
        _clock.Advance(TimeSpan.FromSeconds(31));

        Assert.True(breaker.TryAcquire());
        Assert.True(breaker.RecordFailure());

        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.False(breaker.TryAcquire());
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(breaker.TryAcquire());
    }

    [Fact]
    public void AReleasedTrialLetsTheNextCallerTry()
    {
        var breaker = Breaker();
        Fail(breaker, 3);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(breaker.TryAcquire());

        breaker.Release();

        Assert.True(breaker.TryAcquire());
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
    }

    [Fact]
    public async Task ConcurrentFailuresOpenTheCircuitExactlyOnce()
    {
        var breaker = Breaker(threshold: 50);
        var opened = 0;

        await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(() =>
        {
            if (breaker.RecordFailure())
            {
                Interlocked.Increment(ref opened);
            }
        }, TestContext.Current.CancellationToken)));

        Assert.Equal(1, opened);
        Assert.Equal(CircuitState.Open, breaker.State);
    }
}

/// <summary>The breaker inside a running worker: an upstream that keeps failing stops receiving requests until its break ends.</summary>
public sealed class UpstreamCircuitTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private readonly ShiftedTimeProvider _clock = new();
    private FakeOpenAiUpstream _upstream = null!;
    private RunningServices _services = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _upstream = await FakeOpenAiUpstream.StartAsync(Ct);
        _services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?>
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

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await _redis.DisposeAsync();
    }

    private async Task<List<ServerEvent>> StreamAsync(string model)
    {
        using var client = _services.CreateApiClient();
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
        var breaker = _services.Workers[0].Services.GetRequiredService<CircuitBreakers>().For("flaky");

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(ErrorCodes.ProviderUnavailable, ErrorCode(await StreamAsync("flaky")));
        }

        Assert.Equal(3, _upstream.RequestCount("m-flaky"));
        Assert.Equal(CircuitState.Open, breaker.State);

        // Open: refused without a call, or served by the fallback without a call.
        var refused = await StreamAsync("flaky");
        Assert.Equal(ErrorCodes.ProviderUnavailable, ErrorCode(refused));
        Assert.True(refused.Single(e => e.EventType == "error").Payload.GetProperty("retryable").GetBoolean());
        var fellBack = await StreamAsync("flaky-or-synthetic");
        Assert.Null(ErrorCode(fellBack));
        Assert.Equal(3, fellBack.Count(e => e.EventType == "token"));
        Assert.Equal(3, _upstream.RequestCount("m-flaky"));

        // The break ends: one trial goes through, succeeds, and closes the circuit.
        _clock.Advance(TimeSpan.FromMinutes(1));
        var trial = await StreamAsync("flaky");
        Assert.Equal("back again", trial.Text());
        Assert.Equal(4, _upstream.RequestCount("m-flaky"));
        Assert.Equal(CircuitState.Closed, breaker.State);
    }
}
