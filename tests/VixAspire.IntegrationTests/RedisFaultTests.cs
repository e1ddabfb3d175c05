using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// Redis failing under running streams, with the real services behind the real gateway: dropped connections,
/// a restart that loses every key, and a Redis that does not answer at all. Each test has a Redis of its own,
/// since it breaks it.
/// </summary>
public sealed class RedisFaultTests : IAsyncLifetime
{
    private const int Tokens = 3000;
    private const int Drops = 5;

    private readonly RedisServer _redis = new();
    private RunningServices _services = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?>
        {
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00.001",
        }, cancellationToken: Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task AStreamCarriesOnWhenEveryRedisConnectionIsDroppedMidStream()
    {
        using var client = _services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "blip", max_tokens = Tokens }), Ct);
        await using var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var events = new List<ServerEvent>();
        for (var drop = 1; drop <= Drops; drop++)
        {
            var at = drop * Tokens / (Drops + 2);
            events.AddRange(await ReadUntilAsync(reader, e => e.EventType == "token" && e.Payload.GetProperty("index").GetInt32() >= at));
            // Every connection of the services (commands and subscriptions) while tokens flow; the test's own is skipped.
            await _redis.Database.ExecuteAsync("CLIENT", "KILL", "TYPE", "normal");
            await _redis.Database.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        }

        events.AddRange(await ReadUntilAsync(reader, _ => false));

        Assert.DoesNotContain(events, e => e.EventType == "error");
        Assert.Equal(EndReasons.Length, events.EndReason());
        Assert.Equal(Enumerable.Range(0, Tokens), events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
        Assert.Single(events, e => e.EventType == "end");
    }

    [Fact]
    public async Task ARedisRestartThatLosesTheStreamEndsItWithAnErrorThenEndAndTheNextRequestSucceeds()
    {
        using var client = _services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "restart", max_tokens = 30000 }), Ct);
        await using var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var events = await ReadUntilAsync(reader, e => e.EventType == "token");

        await _redis.KillAsync();
        await _redis.StartAgainAsync();
        events.AddRange(await ReadUntilAsync(reader, _ => false));

        Assert.Equal("error", events[^2].EventType);
        Assert.True(events[^2].Payload.GetProperty("retryable").GetBoolean());
        Assert.Equal(EndReasons.Error, events.EndReason());
        Assert.Single(events, e => e.EventType == "end");

        // No service was restarted: the API queues again, and a worker recreates the lost consumer group and runs it.
        var next = await ReadWholeStreamAsync(client);
        Assert.Equal(EndReasons.Length, next.EndReason());
        Assert.Equal(5, next.Count(e => e.EventType == "token"));
    }

    [Fact]
    public async Task WhileRedisIsUnreachableTheApiAnswers503ProblemDetailsAndRecoversAfterwards()
    {
        using var client = _services.CreateClient();
        var finished = await ReadWholeStreamAsync(client);
        var id = finished[0].Payload.GetProperty("id").GetString();

        await _redis.KillAsync();
        using (var post = await client.PostAsJsonAsync("/infer/stream", new { prompt = "down", max_tokens = 5 }, Ct).WaitAsync(Bound, Ct))
        {
            await AssertUnavailableAsync(post);
        }

        using (var attach = await client.GetAsync($"/infer/stream/{id}", HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct))
        {
            await AssertUnavailableAsync(attach);
        }

        using (var cancel = await client.DeleteAsync($"/infer/stream/{id}", Ct).WaitAsync(Bound, Ct))
        {
            await AssertUnavailableAsync(cancel);
        }

        await _redis.StartAgainAsync();
        var next = await ReadWholeStreamAsync(client);
        Assert.Equal(EndReasons.Length, next.EndReason());
    }

    [Fact]
    public async Task WhileRedisIsUnreachableChatCompletionsAnswer503InOpenAisErrorShape()
    {
        using var client = _services.CreateClient();

        await _redis.KillAsync();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "synthetic", stream = true, messages = new[] { new { role = "user", content = "down" } } }, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal("redis_unavailable", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task WhileRedisIsUnreachableAWebSocketRequestGetsARetryableErrorThenEndAndTheSocketStaysOpen()
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(_services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri, Ct).WaitAsync(Bound, Ct);

        await _redis.KillAsync();
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "inference.request", request_id = "down", payload = new { prompt = "down" } }),
            WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);
        var error = await ReceiveAsync(socket);
        var end = await ReceiveAsync(socket);

        Assert.Equal("inference.error", error.GetProperty("type").GetString());
        Assert.Equal("down", error.GetProperty("request_id").GetString());
        Assert.Equal("redis_unavailable", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.True(error.GetProperty("payload").GetProperty("retryable").GetBoolean());
        Assert.Equal("inference.end", end.GetProperty("type").GetString());
        Assert.Equal(EndReasons.Error, end.GetProperty("payload").GetProperty("reason").GetString());
        Assert.Equal(WebSocketState.Open, socket.State);
    }

    private static async Task<JsonElement> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[16 * 1024];
        var result = await socket.ReceiveAsync(buffer.AsMemory(), Ct).AsTask().WaitAsync(Bound, Ct);
        Assert.True(result.EndOfMessage);
        return JsonDocument.Parse(buffer.AsMemory(0, result.Count)).RootElement.Clone();
    }

    private static async Task AssertUnavailableAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(response.Headers.RetryAfter);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.InRange(body.Length, 1, 64 * 1024);
    }

    /// <summary>A new 5-token request, retried while the services reconnect (a 503 says to retry), read to its end.</summary>
    private static async Task<List<ServerEvent>> ReadWholeStreamAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "next", max_tokens = 5 }), Ct);
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), Ct);
                continue;
            }

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        }
    }

    /// <summary>Reads events up to and including the first that matches (or to the end of the stream).</summary>
    private static async Task<List<ServerEvent>> ReadUntilAsync(IAsyncEnumerator<ServerEvent> reader, Func<ServerEvent, bool> until)
    {
        var events = new List<ServerEvent>();
        while (await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            events.Add(reader.Current);
            if (until(reader.Current))
            {
                break;
            }
        }

        return events;
    }
}
