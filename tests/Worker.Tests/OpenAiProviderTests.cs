using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.AI;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

/// <summary>
/// The OpenAI-compatible provider against a loopback upstream that speaks OpenAI's streaming format: normal
/// streams, and each failure before and after the first token, seen by a client of the real API.
/// </summary>
public sealed class OpenAiProviderTests(OpenAiProviderTests.Fixture fixture) : IClassFixture<OpenAiProviderTests.Fixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public sealed class Fixture : IAsyncLifetime
    {
        public RedisServer Redis { get; } = new();

        public FakeOpenAiUpstream Upstream { get; private set; } = null!;

        public RunningServices Services { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            await Redis.InitializeAsync();
            Upstream = await FakeOpenAiUpstream.StartAsync(TestContext.Current.CancellationToken);
            var settings = new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00",
                ["Streaming:FirstTokenTimeout"] = "00:00:04",
                ["Providers:Resilience:BaseDelay"] = "00:00:00.010",
                // Every test here fails the same upstream on purpose; its circuit is CircuitBreakerTests' subject.
                ["Providers:Resilience:BreakerFailureThreshold"] = "1000",

                ["Providers:OpenAI:fake:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:fake:ApiKey"] = "test-key",
                ["Providers:OpenAI:fake:Model"] = "m-default",
                // Generous: a cold first request (JIT, connection) must not time out and be retried by accident.
                ["Providers:OpenAI:fake:Timeout"] = "00:00:10",
                ["Providers:OpenAI:hasty:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:hasty:Model"] = "m-default",
                ["Providers:OpenAI:hasty:Timeout"] = "00:00:01",
                ["Providers:OpenAI:patient:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:patient:Model"] = "m-default",
                ["Providers:OpenAI:patient:Timeout"] = "00:01:00",
                ["Providers:OpenAI:nowhere:Endpoint"] = $"http://127.0.0.1:{ClosedPort()}/v1",
                ["Providers:OpenAI:nowhere:Model"] = "m-default",
            };
            Route(settings, "up-default", "fake", upstreamModel: null);
            Route(settings, "up-text", "fake", "m-text");
            Route(settings, "up-429", "fake", "m-429");
            Route(settings, "up-429-long", "fake", "m-429-long", "synthetic");
            Route(settings, "up-503", "fake", "m-503", "up-fallback");
            Route(settings, "up-fallback", "fake", "m-fallback");
            Route(settings, "up-500", "fake", "m-500", "synthetic");
            Route(settings, "up-all-a", "fake", "m-all-a", "up-all-b");
            Route(settings, "up-all-b", "fake", "m-all-b");
            Route(settings, "up-400", "fake", "m-400");
            Route(settings, "up-stall", "patient", "m-stall");
            Route(settings, "up-stall-headers", "hasty", "m-stall-headers");
            Route(settings, "up-cut", "fake", "m-cut");
            Route(settings, "up-malformed", "fake", "m-malformed");
            Route(settings, "up-malformed-first", "fake", "m-malformed-first");
            Route(settings, "up-refused", "nowhere", "m-refused", "synthetic");
            Route(settings, "up-fidelity", "fake", "m-fidelity");
            Services = await RunningServices.StartAsync(Redis, settings, gateway: false, cancellationToken: TestContext.Current.CancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            await Services.DisposeAsync();
            await Upstream.DisposeAsync();
            await Redis.DisposeAsync();
        }

        private static void Route(Dictionary<string, string?> settings, string model, string provider, string? upstreamModel, params string[] fallbacks)
        {
            settings[$"Inference:Models:{model}:Provider"] = provider;
            settings[$"Inference:Models:{model}:UpstreamModel"] = upstreamModel;
            for (var i = 0; i < fallbacks.Length; i++)
            {
                settings[$"Inference:Models:{model}:Fallbacks:{i}"] = fallbacks[i];
            }
        }

        private static int ClosedPort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private FakeOpenAiUpstream Upstream => fixture.Upstream;

    private async Task<List<ServerEvent>> StreamAsync(string model, string prompt = "hello upstream", int maxTokens = 50)
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, model, max_tokens = maxTokens }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
    }

    private static JsonElement ErrorOf(List<ServerEvent> events) => Assert.Single(events, e => e.EventType == "error").Payload;

    private static void AssertLeaksNothing(JsonElement error)
    {
        var message = error.GetProperty("message").GetString()!;
        Assert.DoesNotContain(FakeOpenAiUpstream.SecretDetail, message);
        Assert.DoesNotContain("HTTP", message);
        Assert.DoesNotContain("503", message);
        Assert.DoesNotContain("Service Unavailable", message);
    }

    [Fact]
    public async Task TheUpstreamsChunksArriveAsTokensInOrder()
    {
        Upstream.Script("m-text", UpstreamReply.Text("Hello", ",", " streaming", " world", "!"));

        var events = await StreamAsync("up-text", "say hello");

        Assert.Equal(["start", "token", "token", "token", "token", "token", "end"], events.Select(e => e.EventType));
        Assert.Equal(["Hello", ",", " streaming", " world", "!"], events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("text").GetString()));
        Assert.Equal([0, 1, 2, 3, 4], events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
        Assert.Equal("stop", events.EndReason());
        var request = Assert.Single(Upstream.RequestsFor("m-text"));
        Assert.Equal("Bearer test-key", request.Authorization);
        Assert.True(request.Body.GetProperty("stream").GetBoolean());
        Assert.Contains("say hello", request.Body.GetProperty("messages").GetRawText());
        Assert.Equal(50, request.Body.GetProperty("max_completion_tokens").GetInt32());
    }

    [Fact]
    public async Task ARouteWithoutUpstreamModelUsesTheUpstreamsConfiguredModel()
    {
        Upstream.Script("m-default", UpstreamReply.Text("default", " model"));

        var events = await StreamAsync("up-default");

        Assert.Equal("default model", events.Text());
        Assert.Equal(1, Upstream.RequestCount("m-default"));
    }

    [Fact]
    public async Task ARateLimitedAttemptIsRetriedAfterItsRetryAfter()
    {
        Upstream.Script("m-429", UpstreamReply.Status(429, retryAfter: "1"), UpstreamReply.Text("after", " the", " limit"));

        var events = await StreamAsync("up-429");

        Assert.Equal("after the limit", events.Text());
        Assert.Equal("stop", events.EndReason());
        var requests = Upstream.RequestsFor("m-429");
        Assert.Equal(2, requests.Count);
        // The backoff alone would wait at most 10 ms: a one-second gap is the Retry-After being honoured.
        Assert.True(Stopwatch.GetElapsedTime(requests[0].Timestamp, requests[1].Timestamp) >= TimeSpan.FromMilliseconds(950));
    }

    [Fact]
    public async Task ARetryAfterTooLongToWaitForMovesOnToTheFallbackAtOnce()
    {
        Upstream.Script("m-429-long", UpstreamReply.Status(429, retryAfter: "99999999999"));

        var started = Stopwatch.GetTimestamp();
        var events = await StreamAsync("up-429-long", "too long", maxTokens: 3);

        Assert.Equal(["start", "token", "token", "token", "end"], events.Select(e => e.EventType));
        Assert.Equal(1, Upstream.RequestCount("m-429-long"));
        // Longer than the 5 s Retry-After the worker would wait for: not waited for at all.
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A503OnThePrimaryIsRetriedThenServedByTheFallbackModel()
    {
        Upstream.Script("m-503", UpstreamReply.Status(503));
        Upstream.Script("m-fallback", UpstreamReply.Text("from", " the", " fallback"));

        var events = await StreamAsync("up-503");

        Assert.Equal(["start", "token", "token", "token", "end"], events.Select(e => e.EventType));
        Assert.Equal("from the fallback", events.Text());
        Assert.Equal(1 + 2, Upstream.RequestCount("m-503"));
        Assert.Equal(1, Upstream.RequestCount("m-fallback"));
    }

    [Fact]
    public async Task AServerErrorIsNotRetriedAndFallsBackToTheSyntheticModel()
    {
        Upstream.Script("m-500", UpstreamReply.Status(500));

        var events = await StreamAsync("up-500", "fall back", maxTokens: 4);

        var seed = SyntheticChatClient.Seed([new ChatMessage(ChatRole.User, "fall back")]);
        Assert.Equal(string.Concat(Enumerable.Range(0, 4).Select(i => SyntheticChatClient.TokenText(seed, i))), events.Text());
        Assert.Equal(1, Upstream.RequestCount("m-500"));
    }

    [Fact]
    public async Task AConnectionRefusedIsRetriedThenFallsBack()
    {
        var events = await StreamAsync("up-refused", "refused", maxTokens: 3);

        Assert.Equal(["start", "token", "token", "token", "end"], events.Select(e => e.EventType));
    }

    [Fact]
    public async Task WhenEveryCandidateFailsTheStreamEndsWithProviderUnavailableAndNoUpstreamDetail()
    {
        Upstream.Script("m-all-a", UpstreamReply.Status(503, retryAfter: "0"));
        Upstream.Script("m-all-b", UpstreamReply.Status(503));

        var events = await StreamAsync("up-all-a");

        Assert.Equal(["start", "error", "end"], events.Select(e => e.EventType));
        var error = ErrorOf(events);
        Assert.Equal(ErrorCodes.ProviderUnavailable, error.GetProperty("code").GetString());
        Assert.True(error.GetProperty("retryable").GetBoolean());
        AssertLeaksNothing(error);
        Assert.DoesNotContain(events, e => e.Data.Contains(FakeOpenAiUpstream.SecretDetail, StringComparison.Ordinal));
        Assert.Equal("error", events.EndReason());
        Assert.Equal(3, Upstream.RequestCount("m-all-a"));
        Assert.Equal(3, Upstream.RequestCount("m-all-b"));
    }

    [Fact]
    public async Task ARejectedRequestIsNotRetriedAndIsNotRetryable()
    {
        Upstream.Script("m-400", UpstreamReply.Status(400));

        var events = await StreamAsync("up-400");

        var error = ErrorOf(events);
        Assert.Equal(ErrorCodes.ProviderUnavailable, error.GetProperty("code").GetString());
        Assert.False(error.GetProperty("retryable").GetBoolean());
        AssertLeaksNothing(error);
        Assert.Equal(1, Upstream.RequestCount("m-400"));
    }

    [Fact]
    public async Task AStallBeforeTheFirstByteEndsWithTheFirstTokenTimeout()
    {
        Upstream.Script("m-stall", UpstreamReply.StallBeforeHeaders());

        var events = await StreamAsync("up-stall");

        Assert.Equal(["start", "error", "end"], events.Select(e => e.EventType));
        var error = ErrorOf(events);
        Assert.Equal(ErrorCodes.ProviderTimeout, error.GetProperty("code").GetString());
        Assert.True(error.GetProperty("retryable").GetBoolean());
        Assert.Equal("error", events.EndReason());
        // The attempt timeout (a minute) never fired, so there was nothing to retry.
        Assert.Equal(1, Upstream.RequestCount("m-stall"));
    }

    [Fact]
    public async Task AnAttemptThatStallsAfterItsHeadersTimesOutAndIsRetried()
    {
        Upstream.Script("m-stall-headers", UpstreamReply.StallAfterHeaders(), UpstreamReply.Text("second", " try"));

        var events = await StreamAsync("up-stall-headers");

        Assert.Equal("second try", events.Text());
        Assert.Equal("stop", events.EndReason());
        Assert.Equal(2, Upstream.RequestCount("m-stall-headers"));
    }

    [Fact]
    public async Task AConnectionCutAfterTokensEndsWithProviderErrorAndIsNotRetried()
    {
        Upstream.Script("m-cut", UpstreamReply.CutAfter(2, "one", " two", " three", " four"));

        var events = await StreamAsync("up-cut");

        Assert.Equal(["start", "token", "token", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal("one two", events.Text());
        var error = ErrorOf(events);
        Assert.Equal(ErrorCodes.ProviderError, error.GetProperty("code").GetString());
        Assert.False(error.GetProperty("retryable").GetBoolean());
        Assert.Equal("error", events.EndReason());
        Assert.Equal(1, Upstream.RequestCount("m-cut"));
    }

    [Fact]
    public async Task AMalformedChunkAfterTokensEndsWithAnErrorThenEnd()
    {
        Upstream.Script("m-malformed", UpstreamReply.MalformedAfter(1, "fine", " then", " broken"));

        var events = await StreamAsync("up-malformed");

        Assert.Equal(["start", "token", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal("fine", events.Text());
        Assert.Equal(ErrorCodes.ProviderError, ErrorOf(events).GetProperty("code").GetString());
        Assert.Equal(1, Upstream.RequestCount("m-malformed"));
    }

    [Fact]
    public async Task AMalformedFirstChunkIsNotRetriedAndEndsWithProviderUnavailable()
    {
        Upstream.Script("m-malformed-first", UpstreamReply.MalformedAfter(0, "never", " seen"));

        var events = await StreamAsync("up-malformed-first");

        Assert.Equal(["start", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal(ErrorCodes.ProviderUnavailable, ErrorOf(events).GetProperty("code").GetString());
        Assert.Equal(1, Upstream.RequestCount("m-malformed-first"));
    }
}
