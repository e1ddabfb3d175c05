using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// <c>stop</c> on every route, through the real gateway: <c>/v1/chat/completions</c> (streamed and whole),
/// <c>POST /infer/stream</c> and the WebSocket. The synthetic model is deterministic, so each test first fetches the
/// text its prompt gives without <c>stop</c>, picks a stop sequence from it, and expects exactly the text before
/// it, finish reason <c>stop</c>, and no byte past it in the token stream, in a replay or in a resumed read. An
/// OpenAI-compatible stand-in on loopback records what it was sent and ignores <c>stop</c>, so its text is cut by
/// the worker too.
/// </summary>
public sealed class StopSequenceTests(StopSequenceTests.Fixture fixture) : IClassFixture<StopSequenceTests.Fixture>
{
    private const int MaxTokens = 16;

    public sealed class Fixture : IAsyncLifetime
    {
        public RedisServer Redis { get; } = new();

        public FakeOpenAiUpstream Upstream { get; private set; } = null!;

        public RunningServices Services { get; private set; } = null!;

        public Uri SocketAddress { get; private set; } = null!;

        public OpenAIClient OpenAi { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            await Redis.InitializeAsync();
            Upstream = await FakeOpenAiUpstream.StartAsync(TestContext.Current.CancellationToken);
            var settings = new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.005",
                ["Providers:OpenAI:fake:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:fake:Model"] = "m-default",
                ["Providers:OpenAI:fake:Timeout"] = "00:00:10",
            };
            foreach (var route in new[] { "array", "single", "infer", "none" })
            {
                settings[$"Inference:Models:up-{route}:Provider"] = "fake";
                settings[$"Inference:Models:up-{route}:UpstreamModel"] = $"m-{route}";
            }

            Services = await RunningServices.StartAsync(Redis, settings, cancellationToken: TestContext.Current.CancellationToken);
            SocketAddress = new UriBuilder(Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri;
            OpenAi = new OpenAIClient(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = new Uri(Services.GatewayAddress!, "/v1") });
        }

        public async ValueTask DisposeAsync()
        {
            await Services.DisposeAsync();
            await Upstream.DisposeAsync();
            await Redis.DisposeAsync();
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>The token texts the synthetic model gives <paramref name="prompt"/> without <c>stop</c>.</summary>
    private async Task<List<string>> ReferenceTokensAsync(string prompt)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, max_tokens = MaxTokens }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("length", events.EndReason());
        return [.. events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("text").GetString()!)];
    }

    /// <summary>A word of the reference text (token 6, without its space), and the text before its first occurrence.</summary>
    private static (string Stop, string Expected) WordOf(List<string> tokens)
    {
        var stop = tokens[6].Trim();
        var text = string.Concat(tokens);
        return (stop, text[..text.IndexOf(stop, StringComparison.Ordinal)]);
    }

    /// <summary>A sequence that spans tokens 4 and 5 (the end of one word, the space, the start of the next), and the text before it.</summary>
    private static (string Stop, string Expected) SpanningOf(List<string> tokens)
    {
        var stop = string.Concat(tokens[4][^2..], tokens[5][..3]);
        var text = string.Concat(tokens);
        return (stop, text[..text.IndexOf(stop, StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task AStreamedChatCompletionEndsBeforeTheStopWordWithFinishReasonStop()
    {
        const string prompt = "stop streamed completion";
        var (stop, expected) = WordOf(await ReferenceTokensAsync(prompt));

        var lines = await RawStreamAsync(new
        {
            model = "synthetic",
            stream = true,
            stream_options = new { include_usage = true },
            max_tokens = MaxTokens,
            stop = new[] { "never-in-this-text", stop },
            messages = new[] { new { role = "user", content = prompt } },
        });

        Assert.Equal("[DONE]", lines[^1]);
        var chunks = lines[..^1].Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var deltas = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0]).ToList();
        var text = string.Concat(deltas.Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal(expected, text);
        Assert.Equal("stop", deltas[^1].GetProperty("finish_reason").GetString());
        var id = chunks[0].GetProperty("id").GetString()!["chatcmpl-".Length..];
        var sent = await AssertNothingPastTheStopAsync(id, expected);
        Assert.Equal(sent, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task AWholeChatCompletionWithOneStopStringSpanningTokensIsCutThere()
    {
        const string prompt = "stop whole completion";
        var (stop, expected) = SpanningOf(await ReferenceTokensAsync(prompt));

        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "synthetic", max_tokens = MaxTokens, stop, messages = new[] { new { role = "user", content = prompt } } }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var completion = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var choice = completion.GetProperty("choices")[0];
        Assert.Equal(expected, choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var sent = await AssertNothingPastTheStopAsync(completion.GetProperty("id").GetString()!["chatcmpl-".Length..], expected);
        Assert.Equal(sent, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task TheOfficialClientsStopSequencesAreHonoured()
    {
        const string prompt = "stop official client";
        var (stop, expected) = WordOf(await ReferenceTokensAsync(prompt));
        var chat = fixture.OpenAi.GetChatClient("synthetic");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = MaxTokens };
        options.StopSequences.Add(stop);
        var text = new StringBuilder();
        OpenAI.Chat.ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(prompt)], options, Ct).WithCancellation(Ct))
        {
            text.AppendJoin("", update.ContentUpdate.Select(p => p.Text));
            finish ??= update.FinishReason;
        }

        Assert.Equal(expected, text.ToString());
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, finish);
    }

    [Fact]
    public async Task InferStreamTakesStopAndEndsWithReasonStop()
    {
        const string prompt = "stop infer stream";
        var tokens = await ReferenceTokensAsync(prompt);
        var (word, _) = WordOf(tokens);
        var (spanning, _) = SpanningOf(tokens);
        var text = string.Concat(tokens);
        var expected = text[..Math.Min(text.IndexOf(word, StringComparison.Ordinal), text.IndexOf(spanning, StringComparison.Ordinal))];

        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, max_tokens = MaxTokens, stop = new[] { word, spanning } }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Null(events.Malformation());
        Assert.Equal(expected, events.Text());
        Assert.Equal("stop", events.EndReason());
        var sent = await AssertNothingPastTheStopAsync(response.Headers.Location!.OriginalString["/infer/stream/".Length..], expected);
        Assert.Equal(sent, events[^1].Payload.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(sent, events.Count(e => e.EventType == "token"));
    }

    [Fact]
    public async Task AStopCutInsideTheLastTokenMaxTokensAllowsEndsWithReasonStopNotLength()
    {
        const string prompt = "stop at the limit";
        var tokens = await ReferenceTokensAsync(prompt);
        var last = tokens[MaxTokens - 1];
        // The last token's final letters: the cut falls inside the very update that reaches max_tokens.
        var stop = last[^2..];
        var text = string.Concat(tokens);
        var expected = text[..text.IndexOf(stop, StringComparison.Ordinal)];
        Assert.True(expected.Length > string.Concat(tokens[..^1]).Length, "the stop must first appear in the last token");

        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, max_tokens = MaxTokens, stop = new[] { stop } }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Null(events.Malformation());
        Assert.Equal(expected, events.Text());
        Assert.Equal("stop", events.EndReason());
    }

    [Fact]
    public async Task TheWebSocketTakesStopAndEndsWithReasonStop()
    {
        const string prompt = "stop over a socket";
        var (stop, expected) = SpanningOf(await ReferenceTokensAsync(prompt));
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(fixture.SocketAddress, Ct).WaitAsync(Bound, Ct);

        await SendAsync(socket, new { type = "inference.request", request_id = "cut", payload = new { prompt, max_tokens = MaxTokens, stop } });
        var messages = await ReadUntilEndAsync(socket);

        Assert.Equal("inference.start", Type(messages[0]));
        var tokens = messages.Where(m => Type(m) == "inference.token").Select(m => m.GetProperty("payload")).ToList();
        Assert.Equal(expected, string.Concat(tokens.Select(t => t.GetProperty("text").GetString())));
        var end = messages[^1].GetProperty("payload");
        Assert.Equal("stop", end.GetProperty("reason").GetString());
        var sent = await AssertNothingPastTheStopAsync(messages[0].GetProperty("stream_id").GetString()!, expected);
        Assert.Equal(sent, tokens.Count);
        Assert.Equal(sent, end.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct).WaitAsync(Bound, Ct);
    }

    [Fact]
    public async Task AnUpstreamReceivesAStopArrayAsSentAndItsTextIsCutToo()
    {
        fixture.Upstream.Script("m-array", UpstreamReply.Text("Hello", " wor", "ld and", " more", "!"));

        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "up-array", stop = new[] { "orld", "\n\n" }, messages = new[] { new { role = "user", content = "upstream array" } } }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var choice = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("choices")[0];
        // The stand-in ignores stop, as some servers do: the worker cut it across the " wor" | "ld and" boundary.
        Assert.Equal("Hello w", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var received = Assert.Single(fixture.Upstream.RequestsFor("m-array")).Body.GetProperty("stop");
        Assert.Equal(["orld", "\n\n"], received.EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task AnUpstreamReceivesASingleStopStringAsAnArrayOfOne()
    {
        fixture.Upstream.Script("m-single", UpstreamReply.Text("one", " two", " three"));

        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "up-single", stop = " three", messages = new[] { new { role = "user", content = "upstream single" } } }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("one two", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        // OpenAI takes a string or an array; the request is carried as a list, so an upstream gets ["..."].
        var received = Assert.Single(fixture.Upstream.RequestsFor("m-single")).Body.GetProperty("stop");
        Assert.Equal(JsonValueKind.Array, received.ValueKind);
        Assert.Equal([" three"], received.EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task AnUpstreamBehindInferStreamReceivesStopAndItsStreamEndsWithReasonStop()
    {
        fixture.Upstream.Script("m-infer", UpstreamReply.Text("<answer>", "42", "</ans", "wer> and junk"));

        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "upstream infer", model = "up-infer", stop = "</answer>" }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal("<answer>42", events.Text());
        Assert.Equal("stop", events.EndReason());
        Assert.Equal(["</answer>"], Assert.Single(fixture.Upstream.RequestsFor("m-infer")).Body.GetProperty("stop").EnumerateArray().Select(s => s.GetString()));
        await AssertNothingPastTheStopAsync(response.Headers.Location!.OriginalString["/infer/stream/".Length..], "<answer>42");
    }

    [Fact]
    public async Task WithoutStopAnUpstreamReceivesNone()
    {
        fixture.Upstream.Script("m-none", UpstreamReply.Text("all", " of", " it"));

        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "up-none", messages = new[] { new { role = "user", content = "upstream none" } } }, Ct);

        Assert.Equal("all of it", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.False(Assert.Single(fixture.Upstream.RequestsFor("m-none")).Body.TryGetProperty("stop", out _));
    }

    public static TheoryData<string> BadStops => new()
    {
        "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
        "42",
        "\"\"",
        "\"" + new string('x', 10_000) + "\"",
        "[\"ok\",\"\"]",
        "[\"ok\",7]",
        "[\"" + new string('y', 257) + "\"]",
        "{\"stop\":\"x\"}",
        "true",
        "\"\\ud800\"",
    };

    [Theory]
    [MemberData(nameof(BadStops))]
    public async Task AnInvalidStopIsRefusedNamingStopOnEveryRoute(string stop)
    {
        using var client = fixture.Services.CreateClient();

        using var openAi = await PostAsync(client, "/v1/chat/completions", $"{{\"model\":\"synthetic\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"stop\":{stop}}}");
        Assert.Equal(HttpStatusCode.BadRequest, openAi.StatusCode);
        var error = (await openAi.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("stop", error.GetProperty("param").GetString());
        Assert.Equal("invalid_request", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("stop", error.GetProperty("message").GetString());

        using var infer = await PostAsync(client, "/infer/stream", $"{{\"prompt\":\"x\",\"stop\":{stop}}}");
        Assert.Equal(HttpStatusCode.BadRequest, infer.StatusCode);
        Assert.Equal("application/problem+json", infer.Content.Headers.ContentType?.MediaType);
        var problem = await infer.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Contains("stop", problem.GetProperty("errors").GetProperty("stop")[0].GetString());

        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(fixture.SocketAddress, Ct).WaitAsync(Bound, Ct);
        await SendTextAsync(socket, $"{{\"type\":\"inference.request\",\"request_id\":\"bad\",\"payload\":{{\"prompt\":\"x\",\"stop\":{stop}}}}}");
        var messages = await ReadUntilEndAsync(socket);
        Assert.Equal(["inference.error", "inference.end"], messages.Select(Type));
        var refused = messages[0].GetProperty("payload");
        Assert.Equal("invalid_request", refused.GetProperty("code").GetString());
        Assert.Contains("stop", refused.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, messages[0].GetProperty("stream_id").ValueKind);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct).WaitAsync(Bound, Ct);
    }

    /// <summary>
    /// The stored token stream holds exactly <paramref name="expected"/> and ends with reason stop; a replay from the
    /// start and a read resumed after the first token (<c>Last-Event-ID</c>) give exactly it too, nothing past it.
    /// Returns the number of token entries.
    /// </summary>
    private async Task<int> AssertNothingPastTheStopAsync(string id, string expected)
    {
        var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, id, Ct);
        var stored = entries.Where(e => TokenStreams.EventOf(e) == EventNames.Token).Select(e => TokenStreams.PayloadOf(e).GetProperty("text").GetString()).ToList();
        Assert.Equal(expected, string.Concat(stored));
        Assert.Equal("stop", TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString());

        using var client = fixture.Services.CreateClient();
        using var replay = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}"), Ct);
        var events = await replay.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Null(events.Malformation());
        Assert.Equal(expected, events.Text());
        Assert.Equal("stop", events.EndReason());

        if (events.FirstOrDefault(e => e.EventType == "token") is { } first)
        {
            using var resume = new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}");
            resume.Headers.Add("Last-Event-ID", first.Id);
            using var resumed = await client.SendStreamingAsync(resume, Ct);
            var rest = await resumed.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
            Assert.Equal(expected[first.Payload.GetProperty("text").GetString()!.Length..], rest.Text());
            Assert.Equal("stop", rest.EndReason());
        }

        return stored.Count;
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        return await client.PostAsync(path, content, Ct).WaitAsync(Bound, Ct);
    }

    /// <summary>The data lines of a streamed completion, in order.</summary>
    private async Task<List<string>> RawStreamAsync(object body)
    {
        using var client = fixture.Services.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        using var response = await client.SendStreamingAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        return [.. text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..])];
    }

    private static Task SendAsync(ClientWebSocket socket, object message) => SendTextAsync(socket, JsonSerializer.Serialize(message));

    private static async Task SendTextAsync(ClientWebSocket socket, string text) =>
        await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);

    private static async Task<List<JsonElement>> ReadUntilEndAsync(ClientWebSocket socket)
    {
        var messages = new List<JsonElement>();
        while (messages.Count == 0 || Type(messages[^1]) != "inference.end")
        {
            messages.Add(await socket.ReceiveJsonAsync(Bound, Ct));
        }

        return messages;
    }

    private static string? Type(JsonElement message) => message.GetProperty("type").GetString();
}
