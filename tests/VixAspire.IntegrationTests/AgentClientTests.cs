using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// Tool-calling agents written with the JavaScript clients people use (npm <c>openai</c>, the Vercel AI SDK), run
/// unmodified through the real gateway: against the synthetic model, whose answers are held to the server's own answer
/// for the same request, and against an OpenAI-compatible upstream stand-in, whose scripted stream is what the client
/// must see and whose record of what it received is held to what the client sent.
/// </summary>
public sealed class AgentClientTests(AgentClientTests.Fixture fixture) : IClassFixture<AgentClientTests.Fixture>
{
    internal const string WeatherTool = "get_weather";

    internal const string WeatherSchema = """
        {"type":"object","properties":{"city":{"type":"string","minLength":1,"description":"A city name"},
        "unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7}},
        "required":["city","unit","days"],"additionalProperties":false}
        """;

    private const string ForecastSchema = """
        {"type":"object","properties":{"city":{"type":"string"},"temperature":{"type":"number"},"alert":{"type":"boolean"},
        "conditions":{"type":"string","enum":["sunny","cloudy","rainy"]},
        "hourly":{"type":"array","items":{"type":"object","properties":{"hour":{"type":"integer"},"temp":{"type":"number"}},
        "required":["hour","temp"],"additionalProperties":false}}},
        "required":["city","temperature","alert","conditions","hourly"],"additionalProperties":false}
        """;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public sealed class Fixture : ServicesFixture
    {
        /// <summary>Upstream model names, one per test that talks to the stand-in, so their scripts stay apart.</summary>
        public static readonly string[] UpstreamModels = ["split-calls"];

        public FakeOpenAiUpstream Upstream { get; private set; } = null!;

        /// <summary>The OpenAI-style base URL the clients are given: the gateway's <c>/v1</c>.</summary>
        public Uri BaseUrl { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            Upstream = await FakeOpenAiUpstream.StartAsync(TestContext.Current.CancellationToken);
            var settings = new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.002",
                ["Providers:OpenAI:stand-in:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:stand-in:Model"] = "m-default",
                ["Providers:OpenAI:stand-in:Timeout"] = "00:00:10",
            };
            foreach (var name in UpstreamModels)
            {
                settings[$"Inference:Models:u-{name}:Provider"] = "stand-in";
                settings[$"Inference:Models:u-{name}:UpstreamModel"] = $"m-{name}";
            }

            await StartAsync(settings, cancellationToken: TestContext.Current.CancellationToken);
            BaseUrl = new Uri(Services.GatewayAddress!, "/v1");
        }

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            await Upstream.DisposeAsync();
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement Json(string json) => JsonElement.Parse(json);

    private static object WeatherToolJson(string name = WeatherTool) => new
    {
        type = "function",
        function = new { name, description = "Looks up the weather forecast for a city.", parameters = Json(WeatherSchema) },
    };

    /// <summary>A fresh value for a tool to return, so the final answer can only contain it by using the tool's result.</summary>
    internal static string Nonce(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private async Task<JsonElement> RunAsync(string script, object arguments)
    {
        var seen = await NodeClients.RunAsync(script, fixture.BaseUrl, arguments, cancellationToken: Ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"{script} reported: {seen}");
        return seen;
    }

    /// <summary>The server's own whole answer (<c>stream: false</c>, raw JSON) to a request of these fields.</summary>
    private async Task<JsonElement> ServerAnswerAsync(JsonObject request)
    {
        using var client = fixture.Services.CreateClient();
        request["stream"] = false;
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", request, Ct).WaitAsync(Bound, Ct);
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {answer}");
        return answer.GetProperty("choices")[0];
    }

    private static void AssertSame(JsonNode? expected, JsonNode? actual, string field) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{field}: expected {expected?.ToJsonString()}, got {actual?.ToJsonString()}");

    private static JsonNode? Node(JsonElement element) => JsonNode.Parse(element.GetRawText());

    private static JsonNode? Node(object value) => JsonSerializer.SerializeToNode(value);

    /// <summary>Arguments the weather schema accepts: every required field, of its type, within its bounds.</summary>
    internal static void AssertWeatherArguments(JsonElement arguments)
    {
        Assert.Equal(JsonValueKind.Object, arguments.ValueKind);
        Assert.NotEqual("", arguments.GetProperty("city").GetString());
        Assert.Contains(arguments.GetProperty("unit").GetString(), new[] { "celsius", "fahrenheit" });
        Assert.InRange(arguments.GetProperty("days").GetInt32(), 1, 7);
        Assert.Equal(["city", "days", "unit"], arguments.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
    }

    private static void AssertForecast(JsonElement forecast)
    {
        Assert.Equal(JsonValueKind.String, forecast.GetProperty("city").ValueKind);
        Assert.Equal(JsonValueKind.Number, forecast.GetProperty("temperature").ValueKind);
        Assert.Contains(forecast.GetProperty("alert").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
        Assert.Contains(forecast.GetProperty("conditions").GetString(), new[] { "sunny", "cloudy", "rainy" });
        foreach (var hour in forecast.GetProperty("hourly").EnumerateArray())
        {
            Assert.True(hour.GetProperty("hour").TryGetInt64(out _), $"hour is not an integer: {hour}");
            Assert.Equal(JsonValueKind.Number, hour.GetProperty("temp").ValueKind);
        }
    }

    [Fact]
    public async Task TheNpmOpenAiClientCollectsTheStreamedToolCallTheServerMakes()
    {
        var messages = new[] { new { role = "user", content = $"What does {WeatherTool} say for Oslo?" } };
        var tools = new[] { WeatherToolJson(), WeatherToolJson("get_time") };

        var seen = await RunAsync("openai-tool-calls.mjs", new { messages, request = new { tools } });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        var turn = Assert.Single(seen.GetProperty("turns").EnumerateArray());
        Assert.Equal("tool_calls", turn.GetProperty("finishReason").GetString());
        var call = Assert.Single(turn.GetProperty("calls").EnumerateArray());
        Assert.Equal(WeatherTool, call.GetProperty("name").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        AssertWeatherArguments(Json(call.GetProperty("arguments").GetString()!));

        // The same call as the server's whole answer to the same request: id, name and arguments byte for byte.
        var server = await ServerAnswerAsync(new JsonObject { ["model"] = "synthetic", ["messages"] = Node(messages), ["tools"] = Node(tools) });
        Assert.Equal("tool_calls", server.GetProperty("finish_reason").GetString());
        var expected = Assert.Single(server.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        Assert.Equal(expected.GetProperty("id").GetString(), call.GetProperty("id").GetString());
        Assert.Equal(expected.GetProperty("function").GetProperty("name").GetString(), call.GetProperty("name").GetString());
        Assert.Equal(expected.GetProperty("function").GetProperty("arguments").GetString(), call.GetProperty("arguments").GetString());

        // Streamed as OpenAI streams it: id, type and name in the first fragment only, the arguments in several.
        var fragments = turn.GetProperty("fragments").EnumerateArray().ToList();
        Assert.True(fragments.Count > 1, $"The arguments came in {fragments.Count} fragment.");
        Assert.Equal(call.GetProperty("id").GetString(), fragments[0].GetProperty("id").GetString());
        Assert.All(fragments.Skip(1), f => Assert.False(f.TryGetProperty("id", out _) || f.GetProperty("function").TryGetProperty("name", out _), $"{f}"));
    }

    [Fact]
    public async Task TheNpmOpenAiClientsOwnAgentLoopSendsTheResultBackAndGetsAnAnswerThatUsesIt()
    {
        var result = Nonce("sunny-21C");
        var messages = new[] { new { role = "user", content = $"Call {WeatherTool} for Bergen, then tell me." } };

        var seen = await RunAsync("openai-tool-calls.mjs",
            new { messages, request = new { tools = new[] { WeatherToolJson() } }, results = new Dictionary<string, string> { [WeatherTool] = result } });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        var turns = seen.GetProperty("turns").EnumerateArray().ToList();
        Assert.Equal(2, turns.Count);
        Assert.Equal("tool_calls", turns[0].GetProperty("finishReason").GetString());
        Assert.Equal("stop", turns[1].GetProperty("finishReason").GetString());
        Assert.Empty(turns[1].GetProperty("calls").EnumerateArray());
        Assert.Contains(result, turns[1].GetProperty("text").GetString(), StringComparison.Ordinal);

        // The answer is the server's own to the conversation the client sent.
        var server = await ServerAnswerAsync(new JsonObject
        {
            ["model"] = "synthetic",
            ["messages"] = Node(seen.GetProperty("sent")[1]),
            ["tools"] = Node(new[] { WeatherToolJson() }),
        });
        Assert.Equal(server.GetProperty("message").GetProperty("content").GetString(), turns[1].GetProperty("text").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheNpmOpenAiRunToolsHelperLoopsThroughTheToolToAFinalAnswer(bool stream)
    {
        var result = Nonce("forecast");
        var tool = new { name = WeatherTool, description = "Looks up the weather forecast for a city.", parameters = Json(WeatherSchema) };

        var seen = await RunAsync("openai-run-tools.mjs", new { prompt = $"Use {WeatherTool} for Tromsø.", tool, result, stream });

        var invocations = seen.GetProperty("invocations").EnumerateArray().ToList();
        var calls = seen.GetProperty("calls").EnumerateArray().ToList();
        Assert.NotEmpty(invocations);
        Assert.Equal(calls.Count, invocations.Count);
        for (var i = 0; i < calls.Count; i++)
        {
            Assert.Equal(WeatherTool, calls[i].GetProperty("name").GetString());
            AssertSame(JsonNode.Parse(calls[i].GetProperty("arguments").GetString()!), Node(invocations[i]), $"invocation {i}");
            AssertWeatherArguments(invocations[i]);
        }

        Assert.Contains(result, seen.GetProperty("content").GetString(), StringComparison.Ordinal);
        var finishes = seen.GetProperty("finishReasons").EnumerateArray().Select(f => f.GetString()).ToList();
        Assert.True(finishes.Count >= 2, $"{finishes.Count} completion(s)");
        Assert.Equal("tool_calls", finishes[0]);
        Assert.Equal("stop", finishes[^1]);
        // One assistant call and its tool result per round, then the answer.
        string[] rounds = [.. Enumerable.Repeat<string[]>(["assistant", "tool"], finishes.Count - 1).SelectMany(r => r)];
        Assert.Equal(["user", .. rounds, "assistant"], seen.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Fact]
    public async Task TheAiSdksStreamTextRunsTheToolInAMultiStepLoopAndAnswersWithItsResult()
    {
        var result = Nonce("snow");

        var seen = await RunAsync("ai-sdk-tools.mjs", new { prompt = $"Ask {WeatherTool} about Oslo for three days.", toolName = WeatherTool, result, maxSteps = 3 });

        Assert.Empty(seen.GetProperty("errors").EnumerateArray());
        Assert.Empty(seen.GetProperty("toolErrors").EnumerateArray());
        Assert.True(seen.GetProperty("steps").GetInt32() >= 2, $"{seen.GetProperty("steps")} step(s)");
        Assert.Equal("tool-calls", seen.GetProperty("stepFinishReasons")[0].GetString());
        Assert.Equal("stop", seen.GetProperty("finishReason").GetString());
        var call = seen.GetProperty("toolCalls")[0];
        Assert.Equal(WeatherTool, call.GetProperty("toolName").GetString());
        // execute ran with the input the SDK's zod schema accepted, and its result went back under the call's id.
        var executed = seen.GetProperty("executed").EnumerateArray().ToList();
        Assert.Equal(seen.GetProperty("toolCalls").GetArrayLength(), executed.Count);
        AssertSame(Node(call.GetProperty("input")), Node(executed[0]), "input");
        AssertWeatherArguments(executed[0]);
        var toolResult = seen.GetProperty("toolResults")[0];
        Assert.Equal(call.GetProperty("toolCallId").GetString(), toolResult.GetProperty("toolCallId").GetString());
        Assert.Equal(result, toolResult.GetProperty("output").GetString());
        Assert.Contains(result, seen.GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAiSdksStructuredOutputStreamsAnObjectItsZodSchemaParses()
    {
        var seen = await RunAsync("ai-sdk-object.mjs", new { prompt = "Forecast for Oslo as an object." });

        Assert.Empty(seen.GetProperty("errors").EnumerateArray());
        Assert.True(seen.GetProperty("parsed").GetBoolean(), $"zod refused it: {seen.GetProperty("issues")}");
        AssertForecast(seen.GetProperty("object"));
        Assert.Equal("stop", seen.GetProperty("finishReason").GetString());
        AssertSame(JsonNode.Parse(seen.GetProperty("text").GetString()!), Node(seen.GetProperty("object")), "text");
        Assert.True(seen.GetProperty("partials").GetInt32() > 1, "The object arrived in one piece, not streamed.");
    }

    [Fact]
    public async Task TheNpmOpenAiClientGetsJsonThatSatisfiesAStrictJsonSchema()
    {
        var messages = new[] { new { role = "user", content = "The forecast for Oslo, please." } };
        var responseFormat = new { type = "json_schema", json_schema = new { name = "forecast", schema = Json(ForecastSchema), strict = true } };

        var seen = await RunAsync("openai-tool-calls.mjs", new { messages, request = new { response_format = responseFormat } });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        var turn = Assert.Single(seen.GetProperty("turns").EnumerateArray());
        var content = turn.GetProperty("text").GetString()!;
        AssertForecast(Json(content));
        Assert.Equal("stop", turn.GetProperty("finishReason").GetString());
        Assert.True(turn.GetProperty("chunks").GetInt32() > 3, "The JSON arrived in one piece, not streamed.");
        var server = await ServerAnswerAsync(new JsonObject { ["model"] = "synthetic", ["messages"] = Node(messages), ["response_format"] = Node(responseFormat) });
        Assert.Equal(server.GetProperty("message").GetProperty("content").GetString(), content);
    }

    [Fact]
    public async Task TheNpmOpenAiClientGetsBothCallsOfAnUpstreamThatPacksOneIntoADeltaAndSplitsTheOther()
    {
        const string model = "u-split-calls";
        (string Id, string Name, string Arguments)[] scripted =
        [
            ("call_up_1", WeatherTool, """{"city":"Oslo","unit":"celsius","days":2}"""),
            ("call_up_2", "get_time", """{"zone":"Europe/Oslo","format":"24h"}"""),
        ];
        string[] answer = ["Both ", "tools ", "answered."];
        // The first call whole in one delta; the second's id and name, then its arguments in fragments.
        var calls = UpstreamReply.Stream("tool_calls",
        [
            UpstreamDelta.ToolCalls(new UpstreamToolCall(0, scripted[0].Id, scripted[0].Name, scripted[0].Arguments)),
            UpstreamDelta.ToolCalls(new UpstreamToolCall(1, scripted[1].Id, scripted[1].Name, "")),
            .. scripted[1].Arguments.Chunk(4).Select(piece => UpstreamDelta.ToolCalls(new UpstreamToolCall(1, Arguments: new string(piece)))),
        ]);
        fixture.Upstream.Script("m-split-calls", calls with { Usage = new UpstreamUsage(PromptTokens: 40, CompletionTokens: 12) },
            UpstreamReply.Stream("stop", answer.Select(UpstreamDelta.Content)));
        var messages = new[] { new { role = "user", content = "weather and time in Oslo" } };
        var tools = new[] { WeatherToolJson(), WeatherToolJson("get_time") };
        var request = new { tools, tool_choice = "required", parallel_tool_calls = true };
        var results = new Dictionary<string, string> { [WeatherTool] = "clear, 18C", ["get_time"] = "14:02" };

        var seen = await RunAsync("openai-tool-calls.mjs", new { model, messages, request, results });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        var turns = seen.GetProperty("turns").EnumerateArray().ToList();
        Assert.Equal(2, turns.Count);
        Assert.Equal("tool_calls", turns[0].GetProperty("finishReason").GetString());
        Assert.Equal(scripted, turns[0].GetProperty("calls").EnumerateArray()
            .Select(c => (c.GetProperty("id").GetString()!, c.GetProperty("name").GetString()!, c.GetProperty("arguments").GetString()!)));
        Assert.Equal(40, turns[0].GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(string.Concat(answer), turns[1].GetProperty("text").GetString());
        Assert.Equal("stop", turns[1].GetProperty("finishReason").GetString());

        // What the stand-in received: the client's tools and tool_choice as sent, then the conversation the client sent.
        var received = fixture.Upstream.RequestsFor("m-split-calls").Select(r => JsonNode.Parse(r.Body.GetRawText())!).ToList();
        Assert.Equal(2, received.Count);
        var sent = Node(request)!;
        foreach (var body in received)
        {
            foreach (var field in new[] { "tools", "tool_choice", "parallel_tool_calls" })
            {
                AssertSame(sent[field], body[field], field);
            }
        }

        AssertSame(Node(seen.GetProperty("sent")[0]), received[0]["messages"], "first turn's messages");
        var second = received[1]["messages"]!.AsArray();
        var sentSecond = Node(seen.GetProperty("sent")[1])!.AsArray();
        Assert.Equal(sentSecond.Count, second.Count);
        for (var i = 0; i < second.Count; i++)
        {
            AssertSame(sentSecond[i], second[i], $"second turn's messages[{i}]");
        }

        Assert.Equal(scripted.Select(c => c.Id), second[1]!["tool_calls"]!.AsArray().Select(c => c!["id"]!.GetValue<string>()));
        Assert.Equal(scripted.Select(c => c.Id), second.Skip(2).Select(m => m!["tool_call_id"]!.GetValue<string>()));
        Assert.Equal(scripted.Select(c => results[c.Name]), second.Skip(2).Select(m => m!["content"]!.GetValue<string>()));
    }
}
