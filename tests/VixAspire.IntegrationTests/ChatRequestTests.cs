using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The whole chat request through the gateway: the same body is accepted by <c>/v1/chat/completions</c>,
/// <c>/infer/stream</c> and the WebSocket and queued alike with every field, and hostile input gets a small 400 (or
/// <c>inference.error</c> then <c>end</c>) naming the parameter, never a 5xx. No worker runs, so what was queued stays
/// on the queue to be read back.
/// </summary>
public sealed class ChatRequestTests(ChatRequestTests.Fixture fixture) : IClassFixture<ChatRequestTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync() => await StartAsync(workers: 0);
    }

    private const int MaxErrorBytes = 64 * 1024;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Conversation = """
        [{"role":"system","content":"be brief"},
         {"role":"user","name":"ann","content":[{"type":"text","text":"weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},
         {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
         {"role":"tool","tool_call_id":"call_1","content":"sunny"}]
        """;

    /// <summary>Every field VixAspire carries, and the trivially honoured ones, valid on all three front ends.</summary>
    private static readonly string EveryField = """
        {"model":"synthetic","messages":MESSAGES,"max_completion_tokens":9,"temperature":0.5,"top_p":0.9,
         "frequency_penalty":0.5,"presence_penalty":-0.5,"seed":42,"stop":["END"],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","strict":true,
           "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
         "tool_choice":"auto","parallel_tool_calls":true,
         "response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":false}},
         "reasoning_effort":"medium","user":"u-1","metadata":{"run":"7"},
         "n":1,"logprobs":false,"store":false,"stream":true,"stream_options":{"include_usage":true}}
        """.Replace("MESSAGES", Conversation, StringComparison.Ordinal);

    [Fact]
    public async Task TheSameRequestIsQueuedAlikeWithEveryFieldFromEveryFrontEnd()
    {
        var fromOpenAi = await QueuedByAsync(() => PostAndHoldAsync("/v1/chat/completions", EveryField));
        var fromInfer = await QueuedByAsync(() => PostAndHoldAsync("/infer/stream", EveryField));
        var fromSocket = await QueuedByAsync(() => SendOverSocketAndHoldAsync(EveryField));

        Assert.Equal(fromOpenAi, fromInfer);
        Assert.Equal(fromOpenAi, fromSocket);
        var request = InferenceRequest.FromUtf8Json(Encoding.UTF8.GetBytes(fromOpenAi))!;
        Assert.Equal(("synthetic", 9, 0.5f, 0.9f, 0.5f, -0.5f, 42L), (request.Model, request.MaxTokens, request.Temperature, request.TopP,
            request.FrequencyPenalty, request.PresencePenalty, request.Seed));
        Assert.Equal(["END"], request.Stop);
        var tool = Assert.Single(request.Tools!);
        Assert.Equal(("get_weather", "Weather", true), (tool.Name, tool.Description, tool.Strict));
        Assert.Equal("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""", tool.Parameters!.Value.GetRawText());
        Assert.Equal(new ToolChoice(ToolChoice.Auto), request.ToolChoice);
        Assert.True(request.ParallelToolCalls);
        Assert.Equal(("json_schema", "answer", """{"type":"object"}""", false),
            (request.ResponseFormat!.Type, request.ResponseFormat.Name, request.ResponseFormat.Schema!.Value.GetRawText(), request.ResponseFormat.Strict));
        Assert.Equal(("medium", "u-1"), (request.ReasoningEffort, request.User));
        Assert.Equal("7", request.Metadata!["run"]);
        Assert.Equal(["system", "user", "assistant", "tool"], request.Messages.Select(m => m.Role));
        Assert.Equal("ann", request.Messages[1].Name);
        Assert.Equal(new ContentPart("image_url", ImageUrl: "data:image/png;base64,iVBORw0KGgo=", Detail: "low"), request.Messages[1].Parts![1]);
        Assert.Equal(new ToolCall("call_1", "get_weather", """{"city":"Paris"}"""), Assert.Single(request.Messages[2].ToolCalls!));
        Assert.Equal(("call_1", "sunny"), (request.Messages[3].ToolCallId, request.Messages[3].Content));
    }

    [Fact]
    public async Task ASchemaOf900KilobytesUnderTheBodyCapIsQueuedWhole()
    {
        var properties = string.Join(",", Enumerable.Range(0, 900).Select(i => $"\"p{i}\":{{\"type\":\"string\",\"description\":\"{new string('d', 980)}\"}}"));
        var schema = $"{{\"type\":\"object\",\"properties\":{{{properties}}}}}";
        var body = """{"model":"synthetic","messages":[{"role":"user","content":"big schema"}],"tools":[{"type":"function","function":{"name":"big","parameters":""" + schema + "}}]}";
        Assert.InRange(body.Length, 900_000, 1_000_000);

        foreach (var send in new Func<Task<IAsyncDisposable>>[]
        {
            () => PostAndHoldAsync("/v1/chat/completions", body),
            () => PostAndHoldAsync("/infer/stream", body),
            () => SendOverSocketAndHoldAsync(body),
        })
        {
            var queued = InferenceRequest.FromUtf8Json(Encoding.UTF8.GetBytes(await QueuedByAsync(send)))!;

            Assert.Equal(schema, Assert.Single(queued.Tools!).Parameters!.Value.GetRawText());
        }
    }

    public static TheoryData<string, string> HostileBodies
    {
        get
        {
            var deep = new string('[', 10_000) + new string(']', 10_000);
            var tools = string.Join(",", Enumerable.Range(0, 10_000).Select(i => "{\"type\":\"function\",\"function\":{\"name\":\"t" + i + "\"}}"));
            const string User = """{"role":"user","content":"hi"}""";
            const string Call = """{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}""";
            return new()
            {
                { "{\"messages\":[" + User + "],\"tools\":[" + tools + "]}", "tools" },
                { "{\"messages\":[" + User + "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"a\":" + deep + "}}}]}", "tools[0].function.parameters" },
                { "{\"messages\":[" + User + "],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":{\"a\":" + deep + "}}}}", "response_format.json_schema.schema" },
                { """{"messages":[{"role":"user","content":[{"type":"text","text":"hear"},{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}""", "messages[0].content[1].type" },
                { """{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}""", "messages[0].content[0].type" },
                { "{\"messages\":[" + User + "," + Call + ",{\"role\":\"tool\",\"tool_call_id\":\"call_nobody_made\",\"content\":\"x\"}]}", "messages[2].tool_call_id" },
                { "{\"messages\":[" + User + ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"city\\\": Par\"}}]}]}", "messages[1].tool_calls[0].function.arguments" },
                { "{\"messages\":[" + User + "],\"top_k\":40}", "top_k" },
                { "{\"messages\":[" + User + "],\"logprobs\":true}", "logprobs" },
            };
        }
    }

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task HostileInputOnV1IsASmallOpenAiErrorNamingTheParameter(string body, string param)
    {
        var (_, bytes) = await PostRefusedAsync("/v1/chat/completions", body);

        var error = JsonDocument.Parse(bytes).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task HostileInputOnInferStreamIsASmallProblemNamingTheParameter(string body, string param)
    {
        var (mediaType, bytes) = await PostRefusedAsync("/infer/stream", body);

        Assert.Equal("application/problem+json", mediaType);
        Assert.True(JsonDocument.Parse(bytes).RootElement.GetProperty("errors").TryGetProperty(param, out _), Encoding.UTF8.GetString(bytes));
    }

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task HostileInputOverTheSocketIsASmallErrorThenEndOnItsRequest(string body, string param)
    {
        using var socket = await ConnectAsync();
        await SendAsync(socket, "hostile", body);

        var error = await socket.ReceiveJsonAsync(Bound, Ct);
        var end = await socket.ReceiveJsonAsync(Bound, Ct);

        Assert.Equal(("inference.error", "hostile"), (error.GetProperty("type").GetString(), error.GetProperty("request_id").GetString()));
        Assert.InRange(error.GetRawText().Length, 1, MaxErrorBytes);
        Assert.Contains(param, error.GetProperty("payload").GetProperty("message").GetString());
        Assert.Equal(("inference.end", "hostile"), (end.GetProperty("type").GetString(), end.GetProperty("request_id").GetString()));
        Assert.Equal("error", end.GetProperty("payload").GetProperty("reason").GetString());
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Posts through the gateway and requires a 400 (never a 5xx) under 64 KiB.</summary>
    private async Task<(string? MediaType, byte[] Body)> PostRefusedAsync(string path, string body)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsync(path, Json(body), Ct).WaitAsync(Bound, Ct);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.InRange(bytes.Length, 1, MaxErrorBytes);
        return (response.Content.Headers.ContentType?.MediaType, bytes);
    }

    /// <summary>Runs <paramref name="send"/> and returns the queued request's JSON (the entry's <c>body</c>) once it is on the queue.</summary>
    private async Task<string> QueuedByAsync(Func<Task<IAsyncDisposable>> send)
    {
        var db = fixture.Redis.Database;
        var before = await db.StreamLengthAsync(RedisKeys.Requests);
        await using var held = await send();
        await Eventually.UntilAsync(async () => await db.StreamLengthAsync(RedisKeys.Requests) > before, Bound, "the request queued", Ct);
        var entry = (await db.StreamRangeAsync(RedisKeys.Requests, count: 1, messageOrder: StackExchange.Redis.Order.Descending)).Single();
        return entry[StreamFields.RequestBody].ToString();
    }

    /// <summary>Posts without waiting for an answer (no worker will give one); disposing the hold drops the request.</summary>
    private Task<IAsyncDisposable> PostAndHoldAsync(string path, string body)
    {
        var client = fixture.Services.CreateClient();
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var sent = client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) }, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        return Task.FromResult<IAsyncDisposable>(new Hold(async () =>
        {
            await cancel.CancelAsync();
            try
            {
                using var response = await sent.WaitAsync(Bound, Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                // The answer had not begun (the OpenAI route waits for its first chunk): the request was queued all the same.
            }

            client.Dispose();
            cancel.Dispose();
        }));
    }

    private async Task<IAsyncDisposable> SendOverSocketAndHoldAsync(string body)
    {
        var socket = await ConnectAsync();
        await SendAsync(socket, "held", body);
        return new Hold(() =>
        {
            socket.Dispose();
            return Task.CompletedTask;
        });
    }

    private async Task<ClientWebSocket> ConnectAsync()
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(fixture.Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri, Ct).WaitAsync(Bound, Ct);
        return socket;
    }

    private static async Task SendAsync(ClientWebSocket socket, string requestId, string payload)
    {
        var message = Encoding.UTF8.GetBytes($"{{\"type\":\"inference.request\",\"request_id\":\"{requestId}\",\"payload\":{payload}}}");
        await socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);
    }

    private sealed class Hold(Func<Task> release) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await release();
    }
}
