using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The whole answer through the real gateway, from an OpenAI-compatible upstream stand-in: tool calls, reasoning,
/// usage and finish reasons, spelled on <c>/v1/chat/completions</c> as OpenAI spells them (read by the official
/// client and checked field by field in the raw JSON), and on <c>/infer/stream</c> as envelopes that resume.
/// </summary>
public sealed class OpenAiAnswerTests(OpenAiAnswerTests.Fixture fixture) : IClassFixture<OpenAiAnswerTests.Fixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Two calls, the first with id, name and arguments in one delta, the second in many fragments.</summary>
    private static readonly string[] Deltas =
    [
        UpstreamDelta.Reasoning("Two lookups"),
        UpstreamDelta.Reasoning(" are needed."),
        UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_w", "get_weather", "{\"city\":\"Oslo\"}"), new UpstreamToolCall(1, "call_t", "get_time", "")),
        .. "{\"zone\":\"Europe/Oslo\",\"format\":\"24h\"}".Chunk(3).Select(piece => UpstreamDelta.ToolCalls(new UpstreamToolCall(1, Arguments: new string(piece)))),
    ];

    private static readonly (string Id, string Name, string Arguments)[] Expected =
    [
        ("call_w", "get_weather", "{\"city\":\"Oslo\"}"),
        ("call_t", "get_time", "{\"zone\":\"Europe/Oslo\",\"format\":\"24h\"}"),
    ];

    public sealed class Fixture : ServicesFixture
    {
        public FakeOpenAiUpstream Upstream { get; private set; } = null!;

        public OpenAIClient OpenAi { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            Upstream = await FakeOpenAiUpstream.StartAsync(TestContext.Current.CancellationToken);
            var settings = new Dictionary<string, string?>
            {
                ["Providers:OpenAI:fake:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:fake:Model"] = "m-default",
                ["Providers:OpenAI:fake:Timeout"] = "00:00:10",
                ["Streaming:DisconnectGrace"] = "00:00:10",
            };
            foreach (var name in new[] { "calls", "filter", "paced" })
            {
                settings[$"Inference:Models:u-{name}:Provider"] = "fake";
                settings[$"Inference:Models:u-{name}:UpstreamModel"] = $"m-{name}";
            }

            await StartAsync(settings, cancellationToken: TestContext.Current.CancellationToken);
            Upstream.Script("m-calls", UpstreamReply.Stream("tool_calls", Deltas) with { Usage = new UpstreamUsage(PromptTokens: 57, CompletionTokens: 21) });
            Upstream.Script("m-filter", UpstreamReply.Stream("content_filter", UpstreamDelta.Content("Partial")));
            OpenAi = new OpenAIClient(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = new Uri(Services.GatewayAddress!, "/v1") });
        }

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            await Upstream.DisposeAsync();
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HttpRequestMessage Completion(string model, bool stream) => new(HttpMethod.Post, "/v1/chat/completions")
    {
        Content = JsonContent.Create(new
        {
            model,
            stream,
            stream_options = stream ? new { include_usage = true } : null,
            messages = new[] { new { role = "user", content = "weather and time in Oslo" } },
        }),
    };

    [Fact]
    public async Task TheOfficialClientStreamsToolCallsWithTheProvidersUsage()
    {
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Arguments)>();
        OpenAI.Chat.ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;

        await foreach (var update in fixture.OpenAi.GetChatClient("u-calls").CompleteChatStreamingAsync([new UserChatMessage("weather and time")], cancellationToken: Ct).WithCancellation(Ct))
        {
            foreach (var fragment in update.ToolCallUpdates)
            {
                var call = calls.TryGetValue(fragment.Index, out var known) ? known : (Id: fragment.ToolCallId, Name: fragment.FunctionName, Arguments: new StringBuilder());
                call.Arguments.Append(fragment.FunctionArgumentsUpdate?.ToString());
                calls[fragment.Index] = call;
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(Expected, calls.Values.Select(c => (c.Id!, c.Name!, c.Arguments.ToString())));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
        Assert.NotNull(usage);
        Assert.Equal(57, usage.InputTokenCount);
        Assert.Equal(21, usage.OutputTokenCount);
        Assert.Equal(78, usage.TotalTokenCount);
    }

    [Fact]
    public async Task StreamedChunksSpellToolCallsAndReasoningAsOpenAiDoes()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(Completion("u-calls", stream: true), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunks = new List<JsonElement>();
        await foreach (var e in response.ReadEventsAsync(Ct).WithCancellation(Ct))
        {
            if (e.Data != "[DONE]")
            {
                chunks.Add(JsonDocument.Parse(e.Data).RootElement.Clone());
            }
        }

        var deltas = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0]).ToList();
        var reasoning = deltas.Where(d => d.GetProperty("delta").TryGetProperty("reasoning_content", out _));
        Assert.Equal("Two lookups are needed.", string.Concat(reasoning.Select(d => d.GetProperty("delta").GetProperty("reasoning_content").GetString())));
        var fragments = deltas.Where(d => d.GetProperty("delta").TryGetProperty("tool_calls", out _))
            .Select(d => Assert.Single(d.GetProperty("delta").GetProperty("tool_calls").EnumerateArray())).ToList();
        foreach (var index in new[] { 0, 1 })
        {
            var mine = fragments.Where(f => f.GetProperty("index").GetInt32() == index).ToList();
            Assert.Equal(Expected[index].Id, mine[0].GetProperty("id").GetString());
            Assert.Equal("function", mine[0].GetProperty("type").GetString());
            Assert.Equal(Expected[index].Name, mine[0].GetProperty("function").GetProperty("name").GetString());
            Assert.All(mine.Skip(1), f => Assert.False(f.TryGetProperty("id", out _) || f.TryGetProperty("type", out _) || f.GetProperty("function").TryGetProperty("name", out _)));
            Assert.Equal(Expected[index].Arguments, string.Concat(mine.Select(f => f.GetProperty("function").GetProperty("arguments").GetString())));
        }

        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());
        var usage = chunks[^1].GetProperty("usage");
        Assert.Equal(57, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(21, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(78, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task AWholeCompletionGathersToolCallsAndReasoningWithNullContent()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendAsync(Completion("u-calls", stream: false), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var completion = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        var choice = completion.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        Assert.Equal("Two lookups are needed.", message.GetProperty("reasoning_content").GetString());
        Assert.Equal(Expected, message.GetProperty("tool_calls").EnumerateArray().Select(c =>
        {
            Assert.Equal("function", c.GetProperty("type").GetString());
            return (c.GetProperty("id").GetString()!, c.GetProperty("function").GetProperty("name").GetString()!, c.GetProperty("function").GetProperty("arguments").GetString()!);
        }));
        Assert.Equal(57, completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        // And the official client reads the same.
        var official = (await fixture.OpenAi.GetChatClient("u-calls").CompleteChatAsync([new UserChatMessage("weather and time")], cancellationToken: Ct)).Value;
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, official.FinishReason);
        Assert.Equal(Expected, official.ToolCalls.Select(c => (c.Id, c.FunctionName, c.FunctionArguments.ToString())));
        Assert.Equal(57, official.Usage.InputTokenCount);
    }

    [Fact]
    public async Task TheContentFilterFinishReachesBothShapes()
    {
        var finish = (OpenAI.Chat.ChatFinishReason?)null;
        await foreach (var update in fixture.OpenAi.GetChatClient("u-filter").CompleteChatStreamingAsync([new UserChatMessage("x")], cancellationToken: Ct).WithCancellation(Ct))
        {
            finish ??= update.FinishReason;
        }

        var whole = (await fixture.OpenAi.GetChatClient("u-filter").CompleteChatAsync([new UserChatMessage("x")], cancellationToken: Ct)).Value;

        Assert.Equal(OpenAI.Chat.ChatFinishReason.ContentFilter, finish);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ContentFilter, whole.FinishReason);
        Assert.Equal("Partial", Assert.Single(whole.Content).Text);
    }

    [Fact]
    public async Task TheWebSocketCarriesToolCallAndReasoningEnvelopesAsStored()
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(fixture.Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri, Ct).WaitAsync(Bound, Ct);
        var request = JsonSerializer.SerializeToUtf8Bytes(new { type = "inference.request", request_id = "r", payload = new { prompt = "weather", model = "u-calls" } });
        await socket.SendAsync(request, WebSocketMessageType.Text, endOfMessage: true, Ct);
        var messages = new List<JsonElement>();
        do
        {
            messages.Add(await socket.ReceiveJsonAsync(Bound, Ct));
        }
        while (messages[^1].GetProperty("type").GetString() != "inference.end");

        // The SSE view of the same stream holds the same envelopes, in the same order.
        var id = messages[0].GetProperty("stream_id").GetString();
        using var client = fixture.Services.CreateClient();
        using var replay = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}"), Ct);
        var events = await replay.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(events.Select(e => (e.EnvelopeType, e.Payload.GetRawText())), messages.Select(m => (m.GetProperty("type").GetString()!, m.GetProperty("payload").GetRawText())));
        Assert.Contains(messages, m => m.GetProperty("type").GetString() == "inference.reasoning");
        Assert.Equal(Expected, events.ToolCalls().Select(c => (c.Id!, c.Name!, c.Arguments)));
    }

    [Fact]
    public async Task AToolCallStreamCutMidArgumentsResumesToTheSameArguments()
    {
        var reply = UpstreamReply.Stream("tool_calls", Deltas) with { DeltaDelay = TimeSpan.FromMilliseconds(40) };
        fixture.Upstream.Script("m-paced", reply);
        using var client = fixture.Services.CreateClient();
        var before = new List<ServerEvent>();
        using (var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "weather", model = "u-paced" }), Ct))
        {
            await foreach (var e in response.ReadEventsAsync(Ct).WithCancellation(Ct))
            {
                before.Add(e);
                // Cut inside the second call's arguments: some of its fragments read, the rest not.
                if (before.Count(x => x.EventType == "tool_call" && x.Payload.GetProperty("index").GetInt32() == 1) == 4)
                {
                    break;
                }
            }
        }

        var id = before[0].Payload.GetProperty("id").GetString();
        var resume = new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}");
        resume.Headers.Add("Last-Event-ID", before[^1].Id);
        using var resumed = await client.SendStreamingAsync(resume, Ct);
        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
        var after = await resumed.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        using var replayed = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}"), Ct);
        var whole = await replayed.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.DoesNotContain(after, e => e.EventType == "start");
        Assert.Contains(after, e => e.EventType == "tool_call");
        List<ServerEvent> joined = [.. before, .. after];
        Assert.Null(joined.Malformation());
        Assert.Equal(whole.Select(e => e.Id), joined.Select(e => e.Id));
        var calls = joined.ToolCalls();
        Assert.Equal(Expected, calls.Select(c => (c.Id!, c.Name!, c.Arguments)));
        Assert.All(calls, c => JsonDocument.Parse(c.Arguments).Dispose());
        Assert.Equal("Two lookups are needed.", joined.Reasoning());
        Assert.Equal("tool_calls", joined.EndReason());
    }
}
