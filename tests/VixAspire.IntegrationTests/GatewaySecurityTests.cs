using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The gateway's door: API keys (both headers, hashed keys, the 401 of each API's format), the client identity it
/// forwards, per-client rate limits and request size limits. One real StreamApi, worker and Redis, with three real
/// gateways in front: keys on, keys off, and keys on with a tight rate limit.
/// </summary>
public sealed class GatewaySecurityTests(GatewaySecurityTests.Fixture fixture) : IClassFixture<GatewaySecurityTests.Fixture>
{
    private const string AliceKey = "vix-test-alice-3f9a1c";
    private const string BobKey = "vix-test-bob-77d2e0";
    private const int GatewayBodyLimit = 64 * 1024;

    public sealed class Fixture : ServicesFixture
    {
        /// <summary>What reached the API: <c>X-Vix-Client</c> (null when absent) by the test's <c>X-Test-Request</c>.</summary>
        public ConcurrentDictionary<string, string?> ClientSeenByApi { get; } = new();

        public CapturingLoggerProvider GatewayLogs { get; } = new();

        public Uri WithKeys { get; private set; } = null!;

        public Uri WithoutKeys { get; private set; } = null!;

        public Uri RateLimited { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.001",
            }, workers: 1, gateway: false,
                apiServices: services => services.AddSingleton<IStartupFilter>(new RecordClientHeader(ClientSeenByApi)));

            var keys = new Dictionary<string, string?>
            {
                ["Gateway:ApiKeys:alice"] = AliceKey,
                ["Gateway:ApiKeys:bob"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(BobKey))),
            };
            WithKeys = await StartGatewayAsync(new Dictionary<string, string?>(keys)
            {
                ["Gateway:MaxRequestBodyBytes"] = GatewayBodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }, GatewayLogs);
            WithoutKeys = await StartGatewayAsync([], logs: null);
            RateLimited = await StartGatewayAsync(new Dictionary<string, string?>
            {
                ["Gateway:ApiKeys:carol"] = "carol-key",
                ["Gateway:ApiKeys:dave"] = "dave-key",
                ["Gateway:ApiKeys:erin"] = "erin-key",
                ["Gateway:RateLimit:RequestsPerSecond"] = "1",
                ["Gateway:RateLimit:Burst"] = "3",
            }, logs: null);
        }

        /// <summary>A gateway with its real routes in front of the fixture's API; <paramref name="logs"/> hears everything it logs.</summary>
        private async Task<Uri> StartGatewayAsync(Dictionary<string, string?> settings, CapturingLoggerProvider? logs) =>
            new((await Services.AddGatewayAsync(settings, logs)).Urls.First());
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AnSseRequestWithoutAKeyOrWithAWrongOneGetsA401Problem()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);

        using var missing = await client.SendAsync(SseEvents.StreamRequest(new { prompt = "no key" }), Ct).WaitAsync(Bound, Ct);
        var missingProblem = await AssertProblemAsync(missing, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal("API key required", missingProblem.GetProperty("title").GetString());

        using var wrongRequest = SseEvents.StreamRequest(new { prompt = "wrong key" });
        wrongRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AliceKey + "x");
        using var wrong = await client.SendAsync(wrongRequest, Ct).WaitAsync(Bound, Ct);
        var wrongProblem = await AssertProblemAsync(wrong, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", wrong.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal("Invalid API key", wrongProblem.GetProperty("title").GetString());
    }

    [Fact]
    public async Task AnOpenAiRequestWithoutAKeyOrWithAWrongOneGetsOpenAisInvalidApiKeyError()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);
        var body = new { model = "synthetic", messages = new[] { new { role = "user", content = "hi" } } };

        using var missing = await client.PostAsJsonAsync("/v1/chat/completions", body, Ct).WaitAsync(Bound, Ct);
        await AssertOpenAiErrorAsync(missing, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);

        using var wrongRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        wrongRequest.Headers.Add("api-key", "not-a-key");
        using var wrong = await client.SendAsync(wrongRequest, Ct).WaitAsync(Bound, Ct);
        await AssertOpenAiErrorAsync(wrong, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");

        using var models = await client.GetAsync("/v1/models", Ct).WaitAsync(Bound, Ct);
        await AssertOpenAiErrorAsync(models, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");
    }

    [Fact]
    public async Task AWebSocketUpgradeWithoutAKeyGetsHttp401AndWithAKeyOpens()
    {
        var address = new UriBuilder(fixture.WithKeys) { Scheme = "ws", Path = "/infer/ws" }.Uri;

        using var refused = new ClientWebSocket();
        refused.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(address, Ct).WaitAsync(Bound, Ct));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.HttpStatusCode);
        Assert.Contains("Bearer", refused.HttpResponseHeaders!["WWW-Authenticate"]);

        using var wrong = new ClientWebSocket();
        wrong.Options.CollectHttpResponseDetails = true;
        wrong.Options.SetRequestHeader("Authorization", "Bearer " + BobKey + "0");
        await Assert.ThrowsAsync<WebSocketException>(() => wrong.ConnectAsync(address, Ct).WaitAsync(Bound, Ct));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.HttpStatusCode);

        using var accepted = new ClientWebSocket();
        accepted.Options.SetRequestHeader("Authorization", "Bearer " + AliceKey);
        await accepted.ConnectAsync(address, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(WebSocketState.Open, accepted.State);
        await accepted.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct).WaitAsync(Bound, Ct);
    }

    [Fact]
    public async Task BearerAndApiKeyHeadersAndHashedKeysAreAcceptedAndTheApiSeesTheKeysName()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);

        Assert.Equal("alice", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Authorization = new("Bearer", AliceKey)));
        Assert.Equal("alice", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Add("api-key", AliceKey)));
        // Configured only as sha256:<hex>.
        Assert.Equal("bob", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Authorization = new("Bearer", BobKey)));
        Assert.Equal("bob", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Add("api-key", BobKey)));
    }

    [Fact]
    public async Task WithAKeyAStreamRunsInFullThroughTheGateway()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);
        using var request = SseEvents.StreamRequest(new { prompt = "keyed", model = "synthetic", max_tokens = 4 });
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AliceKey);

        using var response = await client.SendStreamingAsync(request, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(["start", .. Enumerable.Repeat("token", 4), "end"], events.Select(e => e.EventType));
    }

    [Fact]
    public async Task AClientSentXVixClientIsReplacedByTheKeysNameOrRemovedWhenKeysAreOff()
    {
        using var keyed = RunningServices.CreateClient(fixture.WithKeys);
        Assert.Equal("alice", await ClientSeenByApiAsync(keyed, "/v1/models", r =>
        {
            r.Headers.Authorization = new("Bearer", AliceKey);
            r.Headers.Add("X-Vix-Client", "bob");
        }));
        Assert.Equal("bob", await ClientSeenByApiAsync(keyed, "/infer/stream/no-such-stream", r =>
        {
            r.Headers.Add("api-key", BobKey);
            r.Headers.Add("X-Vix-Client", ["alice", "carol"]);
        }));

        using var open = RunningServices.CreateClient(fixture.WithoutKeys);
        Assert.Null(await ClientSeenByApiAsync(open, "/v1/models", r => r.Headers.Add("X-Vix-Client", "alice")));
        Assert.Null(await ClientSeenByApiAsync(open, "/infer/stream/no-such-stream", r => r.Headers.Add("X-Vix-Client", "alice")));
    }

    [Fact]
    public async Task WithoutKeysConfiguredEverythingIsOpenAsBefore()
    {
        using var client = RunningServices.CreateClient(fixture.WithoutKeys);

        using var models = await client.GetAsync("/v1/models", Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);

        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "open", model = "synthetic", max_tokens = 2 }), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("end", events[^1].EventType);
    }

    [Fact]
    public async Task HealthAndTheDemoPageStayAnonymousWithKeysOn()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);

        foreach (var path in new[] { "/health", "/alive", "/", "/app.js", "/app.css" })
        {
            using var response = await client.GetAsync(path, Ct).WaitAsync(Bound, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode}");
        }

        using var page = await client.GetAsync("/", Ct).WaitAsync(Bound, Ct);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task KeysNeverAppearInTheGatewaysLogs()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);
        const string wrongKey = "vix-test-wrong-5be61a";

        Assert.Equal("alice", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Authorization = new("Bearer", AliceKey)));
        Assert.Equal("bob", await ClientSeenByApiAsync(client, "/v1/models", r => r.Headers.Add("api-key", BobKey)));
        using var wrongRequest = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        wrongRequest.Headers.Authorization = new("Bearer", wrongKey);
        using var wrong = await client.SendAsync(wrongRequest, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);

        var logs = fixture.GatewayLogs.Lines;
        // The capture works: the names and the refusal are there, at every level.
        Assert.Contains(logs, l => l.Contains("Authenticated client alice", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains("Authenticated client bob", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains("API key is not valid", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.StartsWith("Yarp.", StringComparison.Ordinal));
        foreach (var secret in new[] { AliceKey, BobKey, wrongKey })
        {
            Assert.DoesNotContain(logs, l => l.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task OverItsRateAKeyGets429WithRetryAfterInOpenAisFormatWhileAnotherKeyGoesThrough()
    {
        using var client = RunningServices.CreateClient(fixture.RateLimited);

        var responses = await SendAtOnceAsync(client, 10, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
            request.Headers.Add("api-key", "carol-key");
            return request;
        });
        try
        {
            // A bucket of 3 refilled at 1 a second: 10 at once cannot all pass.
            Assert.InRange(responses.Count(r => r.StatusCode == HttpStatusCode.OK), 1, 6);
            var refused = responses.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
            Assert.InRange(refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
            await AssertOpenAiErrorAsync(refused, HttpStatusCode.TooManyRequests, "rate_limit_error", "rate_limit_exceeded");
        }
        finally
        {
            responses.ForEach(r => r.Dispose());
        }

        // Another key has a bucket of its own.
        using var other = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        other.Headers.Add("api-key", "erin-key");
        using var otherResponse = await client.SendAsync(other, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, otherResponse.StatusCode);
    }

    [Fact]
    public async Task OverItsRateAKeyGets429WithRetryAfterAsAProblemOnInfer()
    {
        using var client = RunningServices.CreateClient(fixture.RateLimited);

        var responses = await SendAtOnceAsync(client, 10, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/infer/stream/no-such-stream");
            request.Headers.Authorization = new("Bearer", "dave-key");
            return request;
        });
        try
        {
            // What got through reached the API, which knows no such stream.
            Assert.InRange(responses.Count(r => r.StatusCode == HttpStatusCode.NotFound), 1, 6);
            var refused = responses.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
            Assert.InRange(refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
            var problem = await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
            Assert.Equal("Too many requests", problem.GetProperty("title").GetString());
        }
        finally
        {
            responses.ForEach(r => r.Dispose());
        }
    }

    [Fact]
    public async Task ABodyOverTheGatewaysLimitGetsA413InEachApisFormat()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);
        var oversize = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { prompt = new string('x', GatewayBodyLimit + 1024) }));

        using var sse = new HttpRequestMessage(HttpMethod.Post, "/infer/stream") { Content = new ByteArrayContent(oversize) };
        sse.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        sse.Headers.Authorization = new("Bearer", AliceKey);
        using var sseResponse = await client.SendAsync(sse, Ct).WaitAsync(Bound, Ct);
        var problem = await AssertProblemAsync(sseResponse, HttpStatusCode.RequestEntityTooLarge);
        // The gateway's limit, not the API's (1 MiB).
        Assert.Contains($"{GatewayBodyLimit} bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var openAi = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new ByteArrayContent(oversize) };
        openAi.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        openAi.Headers.Add("api-key", AliceKey);
        using var openAiResponse = await client.SendAsync(openAi, Ct).WaitAsync(Bound, Ct);
        await AssertOpenAiErrorAsync(openAiResponse, HttpStatusCode.RequestEntityTooLarge, "invalid_request_error", "request_too_large");
    }

    [Fact]
    public async Task AChunkedBodyOverTheGatewaysLimitGetsA413ProblemNotA5xx()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);
        var oversize = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { prompt = new string('x', GatewayBodyLimit + 1024) }));

        // No Content-Length: only Kestrel's limit can stop it, while YARP streams it to the API.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/infer/stream") { Content = new StreamContent(new MemoryStream(oversize)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Authorization = new("Bearer", AliceKey);
        using var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        var problem = await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains($"{GatewayBodyLimit} bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HeadersOverTheGatewaysLimitsGet431()
    {
        using var client = RunningServices.CreateClient(fixture.WithKeys);

        using var huge = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        huge.Headers.Add("api-key", AliceKey);
        huge.Headers.Add("X-Padding", new string('p', 40 * 1024));
        using var hugeResponse = await client.SendAsync(huge, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, hugeResponse.StatusCode);

        using var many = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        many.Headers.Add("api-key", AliceKey);
        for (var i = 0; i < 150; i++)
        {
            many.Headers.Add($"X-Header-{i}", "v");
        }

        using var manyResponse = await client.SendAsync(many, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, manyResponse.StatusCode);

        // Within the limits the same request goes through.
        using var fine = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        fine.Headers.Add("api-key", AliceKey);
        fine.Headers.Add("X-Padding", new string('p', 8 * 1024));
        using var fineResponse = await client.SendAsync(fine, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, fineResponse.StatusCode);
    }

    /// <summary>Sends one request tagged with a fresh <c>X-Test-Request</c> and returns the <c>X-Vix-Client</c> the API saw.</summary>
    private async Task<string?> ClientSeenByApiAsync(HttpClient client, string path, Action<HttpRequestMessage> configure)
    {
        var id = Guid.NewGuid().ToString("N");
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(RecordClientHeader.TestRequestHeader, id);
        configure(request);
        using var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{path}: {(int)response.StatusCode}");
        Assert.True(fixture.ClientSeenByApi.TryGetValue(id, out var seen), $"{path} did not reach the API");
        return seen;
    }

    private static async Task<List<HttpResponseMessage>> SendAtOnceAsync(HttpClient client, int count, Func<HttpRequestMessage> create)
    {
        var requests = Enumerable.Range(0, count).Select(_ => create()).ToList();
        try
        {
            return [.. await Task.WhenAll(requests.Select(r => client.SendAsync(r, Ct))).WaitAsync(Bound, Ct)];
        }
        finally
        {
            requests.ForEach(r => r.Dispose());
        }
    }

    private static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct).WaitAsync(Bound, Ct);
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
        return problem;
    }

    private static async Task AssertOpenAiErrorAsync(HttpResponseMessage response, HttpStatusCode status, string type, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct).WaitAsync(Bound, Ct);
        var error = body.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal(code, error.GetProperty("code").GetString());
    }

    /// <summary>In front of the API's pipeline: records the <c>X-Vix-Client</c> each tagged request arrived with.</summary>
    private sealed class RecordClientHeader(ConcurrentDictionary<string, string?> seen) : IStartupFilter
    {
        public const string TestRequestHeader = "X-Test-Request";

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (context.Request.Headers[TestRequestHeader].ToString() is { Length: > 0 } id)
                {
                    var client = context.Request.Headers["X-Vix-Client"];
                    seen[id] = client.Count == 0 ? null : client.ToString();
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}

/// <summary>Keeps every log line (category, message, exception) of the host it is added to.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(" ", pairs.Select(p => $"{p.Key}={p.Value}")) : "";
            lines.Enqueue($"{category} [{logLevel}] {formatter(state, exception)} {values} {exception}");
        }
    }
}
