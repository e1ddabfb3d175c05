using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The gateway's side of StreamApi: the protocol it forwards over (HTTP/2 to the API's <c>h2</c> endpoint by default,
/// HTTP/1.1 when <c>Gateway:UpstreamHttp2</c> is false), and its capacity: with <c>Gateway:MaxConcurrentStreams</c>
/// at 2, a third stream is refused with 503 in each front end's error format, and once a stream ends the next one runs.
/// </summary>
public sealed class UpstreamTests(UpstreamTests.Http2Fixture http2, UpstreamTests.Http1Fixture http1)
    : IClassFixture<UpstreamTests.Http2Fixture>, IClassFixture<UpstreamTests.Http1Fixture>
{
    private const int MaxStreams = 2;

    /// <summary>Services whose API records the protocol of every request it is sent.</summary>
    public abstract class RecordingFixture(bool http2) : ServicesFixture
    {
        public ConcurrentQueue<(string Path, string Protocol)> Requests { get; } = new();

        public override async ValueTask InitializeAsync() => await StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:UpstreamHttp2"] = http2.ToString(),
            ["Gateway:MaxConcurrentStreams"] = MaxStreams.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00.050",
            ["Streaming:MaxConcurrentStreamsPerClient"] = "0",
        }, apiServices: services => services.AddSingleton<IStartupFilter>(new RecordProtocol(Requests)));
    }

    public sealed class Http2Fixture() : RecordingFixture(http2: true);

    public sealed class Http1Fixture() : RecordingFixture(http2: false);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(true, "HTTP/2")]
    [InlineData(false, "HTTP/1.1")]
    public async Task StreamsReachTheApiOverTheConfiguredProtocol(bool overHttp2, string protocol)
    {
        var fixture = overHttp2 ? (RecordingFixture)http2 : http1;
        using var client = fixture.Services.CreateClient();
        var prompt = $"protocol {protocol}";

        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, max_tokens = 3 }), Ct).WaitAsync(Bound, Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["start", "token", "token", "token", "end"], events.Select(e => e.EventType));
        Assert.Contains(("/infer/stream", protocol), fixture.Requests);
        Assert.DoesNotContain(fixture.Requests, r => r.Path != "/infer/ws" && r.Protocol != protocol);
    }

    [Fact]
    public async Task WebSocketsReachTheApiOverHttp2AsExtendedConnect()
    {
        using var socket = new ClientWebSocket();
        var address = new UriBuilder(http2.Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri;

        await socket.ConnectAsync(address, Ct).WaitAsync(Bound, Ct);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct).WaitAsync(Bound, Ct);

        // The client upgraded over HTTP/1.1; the gateway opened the socket upstream on a shared HTTP/2 connection.
        Assert.Contains(("/infer/ws", "HTTP/2"), http2.Requests);
    }

    [Fact]
    public async Task PastMaxConcurrentStreamsTheGatewayAnswers503InEachFormatAndRecoversWhenAStreamEnds()
    {
        using var client = http2.Services.CreateClient();
        var held = new List<HttpResponseMessage>();
        try
        {
            for (var i = 0; i < MaxStreams; i++)
            {
                var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = $"held {i}", max_tokens = 5000 }), Ct).WaitAsync(Bound, Ct);
                held.Add(response);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            using (var refused = await client.SendAsync(SseEvents.StreamRequest(new { prompt = "one too many", max_tokens = 3 }), Ct).WaitAsync(Bound, Ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
                Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {refused.Headers.RetryAfter}");
                var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct).WaitAsync(Bound, Ct);
                Assert.Equal(503, problem.GetProperty("status").GetInt32());
                Assert.Contains("Gateway:MaxConcurrentStreams", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            using (var refused = await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = "synthetic",
                stream = true,
                messages = new[] { new { role = "user", content = "one too many" } },
            }, Ct).WaitAsync(Bound, Ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Equal("application/json", refused.Content.Headers.ContentType?.MediaType);
                var error = (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct).WaitAsync(Bound, Ct)).GetProperty("error");
                Assert.Equal("server_error", error.GetProperty("type").GetString());
                Assert.Equal("server_overloaded", error.GetProperty("code").GetString());
            }

            // One stream ends (its client leaves): its slot comes back once the gateway has seen it go.
            held[0].Dispose();
            held.RemoveAt(0);
            var deadline = DateTime.UtcNow + Bound;
            HttpStatusCode status;
            do
            {
                using var next = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "after", max_tokens = 3 }), Ct).WaitAsync(Bound, Ct);
                status = next.StatusCode;
                if (status == HttpStatusCode.OK)
                {
                    var events = await next.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
                    Assert.Equal("end", events[^1].EventType);
                }
                else
                {
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
                    await Task.Yield();
                }
            }
            while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);

            Assert.Equal(HttpStatusCode.OK, status);
        }
        finally
        {
            held.ForEach(r => r.Dispose());
        }
    }

    /// <summary>In front of the API's pipeline: records each request's path and protocol.</summary>
    private sealed class RecordProtocol(ConcurrentQueue<(string Path, string Protocol)> requests) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (!context.Request.Path.StartsWithSegments("/health") && !context.Request.Path.StartsWithSegments("/alive"))
                {
                    requests.Enqueue((context.Request.Path.Value ?? "", context.Request.Protocol));
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
