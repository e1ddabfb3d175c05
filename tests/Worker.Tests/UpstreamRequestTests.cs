using System.Text.Json;
using System.Text.Json.Nodes;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.Worker.Tests;

/// <summary>
/// What an OpenAI-compatible upstream receives for a queued request, compared field by field with the chat request the
/// client sent (the OpenAI body the queued request came from): the worker forwards it, nothing dropped, rewritten or added.
/// </summary>
public sealed class UpstreamRequestTests(OpenAiProviderTests.Fixture fixture) : IClassFixture<OpenAiProviderTests.Fixture>
{
    private const string UpstreamModel = "m-fidelity";

    /// <summary>Keys the worker's client adds to every request: the upstream's model, streaming, and usage in the stream.</summary>
    private static readonly string[] TransportKeys = ["model", "stream", "stream_options"];

    private const string WeatherSchema = """
        {"type":"object","properties":{"city":{"type":"string","minLength":1,"description":"A city name"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},
        "where":{"type":"object","properties":{"lat":{"type":"number","minimum":-90},"lon":{"type":"number"}},"required":["lat","lon"],"additionalProperties":false}},
        "required":["city","unit","where"],"additionalProperties":false}
        """;

    private const string TimeSchema = """{"type":"object","properties":{"zone":{"type":"string","pattern":"^[A-Za-z_/]+$"}}}""";

    private const string ReportSchema = """
        {"type":"object","properties":{"summary":{"type":"string"},"readings":{"type":"array","items":{"type":"object","properties":{"hour":{"type":"integer"},
        "temp":{"type":"number"}},"required":["hour","temp"],"additionalProperties":false}}},"required":["summary","readings"],"additionalProperties":false}
        """;

    // One pixel of PNG, in canonical base64.
    private const string PixelDataUri = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    /// <summary>The client's request, as it reached the API's <c>/v1/chat/completions</c>.</summary>
    private static readonly string ClientBody = $$$"""
        {
          "model": "up-fidelity",
          "messages": [
            {"role": "system", "content": "You are terse.", "name": "ops-bot_1"},
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "name": "alice-1", "content": [
              {"type": "text", "text": "What is in these images?"},
              {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
              {"type": "image_url", "image_url": {"url": "{{{PixelDataUri}}}", "detail": "low"}}
            ]},
            {"role": "assistant", "tool_calls": [
              {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\", \"where\": {\"lat\": 48.85, \"lon\": 2.35}}"}},
              {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\":\"Europe/Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "14:02"}
          ],
          "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {{{WeatherSchema}}}, "strict": true}},
            {"type": "function", "function": {"name": "get_time", "description": "Local time", "parameters": {{{TimeSchema}}}}}
          ],
          "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
          "parallel_tool_calls": false,
          "response_format": {"type": "json_schema", "json_schema": {"name": "weather_report", "description": "A report", "schema": {{{ReportSchema}}}, "strict": true}},
          "stop": ["\n\n", "END"],
          "seed": 42,
          "top_p": 0.5,
          "frequency_penalty": 0.25,
          "presence_penalty": -0.5,
          "reasoning_effort": "minimal",
          "user": "user-1234",
          "metadata": {"tenant": "acme", "trace": "t-1"},
          "max_tokens": 77,
          "temperature": 0.75
        }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The request the API queues for <see cref="ClientBody"/>.</summary>
    private static InferenceRequest FullRequest() => new("up-fidelity",
        [
            new ChatTurn("system", "You are terse.") { Name = "ops-bot_1" },
            new ChatTurn("developer", "Answer in French."),
            new ChatTurn("user", null)
            {
                Name = "alice-1",
                Parts =
                [
                    new ContentPart(ContentPart.TextType, Text: "What is in these images?"),
                    new ContentPart(ContentPart.ImageType, ImageUrl: "https://example.com/cat.png", Detail: "high"),
                    new ContentPart(ContentPart.ImageType, ImageUrl: PixelDataUri, Detail: "low"),
                ],
            },
            new ChatTurn("assistant", null)
            {
                ToolCalls =
                [
                    new ToolCall("call_1", "get_weather", """{"city": "Paris", "unit": "celsius", "where": {"lat": 48.85, "lon": 2.35}}"""),
                    new ToolCall("call_2", "get_time", """{"zone":"Europe/Paris"}"""),
                ],
            },
            new ChatTurn("tool", """{"temp": 21.5, "sky": "clear"}""") { ToolCallId = "call_1" },
            new ChatTurn("tool", "14:02") { ToolCallId = "call_2" },
        ],
        MaxTokens: 77, Temperature: 0.75f)
    {
        Tools =
        [
            new ToolDefinition("get_weather", "Current weather", Json(WeatherSchema), Strict: true),
            new ToolDefinition("get_time", "Local time", Json(TimeSchema), Strict: null),
        ],
        ToolChoice = new ToolChoice(ToolChoice.Named, "get_weather"),
        ParallelToolCalls = false,
        ResponseFormat = new ResponseFormat(ResponseFormat.JsonSchemaType, "weather_report", "A report", Json(ReportSchema), Strict: true),
        Stop = ["\n\n", "END"],
        Seed = 42,
        TopP = 0.5f,
        FrequencyPenalty = 0.25f,
        PresencePenalty = -0.5f,
        ReasoningEffort = "minimal",
        User = "user-1234",
        Metadata = new Dictionary<string, string> { ["tenant"] = "acme", ["trace"] = "t-1" },
    };

    private static InferenceRequest Plain(string marker) => new("up-fidelity", [new ChatTurn("user", marker)], MaxTokens: 5, Temperature: null);

    private static JsonElement Json(string json) => JsonElement.Parse(json);

    /// <summary>Queues <paramref name="request"/> straight into Redis (as the API would), and returns what the upstream received for it.</summary>
    private async Task<JsonObject> UpstreamBodyAsync(InferenceRequest request)
    {
        fixture.Upstream.Script(UpstreamModel, UpstreamReply.Text("ok"));
        var id = await TokenStreams.EnqueueAsync(fixture.Redis.Database, request);
        var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, id, Ct);
        Assert.True(EndReasons.Stop == TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString(), string.Join(" ", entries.Select(e => e[StreamFields.Data].ToString())));
        var marker = JsonSerializer.SerializeToNode(request.Messages[0].Content ?? request.Messages[0].Text());
        var received = Assert.Single(fixture.Upstream.RequestsFor(UpstreamModel),
            r => JsonNode.DeepEquals(JsonNode.Parse(r.Body.GetRawText())!["messages"]![0]!["content"], marker));
        return JsonNode.Parse(received.Body.GetRawText())!.AsObject();
    }

    private static void AssertSame(JsonNode? expected, JsonNode? actual, string field) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{field}: expected {expected?.ToJsonString()}, received {actual?.ToJsonString()}");

    [Fact]
    public async Task EveryFieldTheClientSentReachesTheUpstreamAsSent()
    {
        var sent = JsonNode.Parse(ClientBody)!.AsObject();

        var received = await UpstreamBodyAsync(FullRequest());

        var sentMessages = sent["messages"]!.AsArray();
        var receivedMessages = received["messages"]!.AsArray();
        Assert.Equal(sentMessages.Count, receivedMessages.Count);
        for (var i = 0; i < sentMessages.Count; i++)
        {
            AssertSame(sentMessages[i], receivedMessages[i], $"messages[{i}]");
        }

        // The arguments byte for byte, not only as equivalent JSON: what the model wrote is what it reads back.
        Assert.Equal(
            sentMessages[3]!["tool_calls"]!.AsArray().Select(c => c!["function"]!["arguments"]!.GetValue<string>()),
            receivedMessages[3]!["tool_calls"]!.AsArray().Select(c => c!["function"]!["arguments"]!.GetValue<string>()));
        foreach (var field in new[] { "tools", "tool_choice", "parallel_tool_calls", "response_format", "stop", "seed", "top_p",
            "frequency_penalty", "presence_penalty", "reasoning_effort", "user", "metadata", "temperature" })
        {
            AssertSame(sent[field], received[field], field);
        }

        // OpenAI's client library sends the limit under its current name, which OpenAI-compatible servers read alike.
        AssertSame(sent["max_tokens"], received["max_completion_tokens"], "max_tokens");
        Assert.Equal(UpstreamModel, received["model"]!.GetValue<string>());
        var expectedKeys = sent.Select(p => p.Key).Except(["max_tokens"]).Append("max_completion_tokens").Union(TransportKeys);
        Assert.Equal(expectedKeys.Order(), received.Select(p => p.Key).Order());
    }

    [Fact]
    public async Task APlainTextRequestSendsOnlyWhatTheClientSent()
    {
        var request = Plain("plain request") with { Temperature = 0.5f };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse("""[{"role":"user","content":"plain request"}]"""), received["messages"], "messages");
        Assert.Equal(0.5f, received["temperature"]!.GetValue<float>());
        Assert.Equal(request.MaxTokens, received["max_completion_tokens"]!.GetValue<int>());
        Assert.Equal(new[] { "max_completion_tokens", "messages", "temperature" }.Concat(TransportKeys).Order(), received.Select(p => p.Key).Order());
    }

    [Fact]
    public async Task AnEarlierAnswersReasoningReachesTheUpstreamOnItsAssistantMessage()
    {
        var request = Plain("first question") with
        {
            Messages =
            [
                new ChatTurn("user", "first question"),
                new ChatTurn("assistant", "forty-two") { ReasoningContent = "six times seven" },
                new ChatTurn("user", "and again?"),
            ],
        };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse("""
            [{"role":"user","content":"first question"},{"role":"assistant","content":"forty-two","reasoning_content":"six times seven"},
             {"role":"user","content":"and again?"}]
            """), received["messages"], "messages");
    }

    [Theory]
    [InlineData(ToolChoice.None, null, "\"none\"")]
    [InlineData(ToolChoice.Auto, null, "\"auto\"")]
    [InlineData(ToolChoice.Required, null, "\"required\"")]
    [InlineData(ToolChoice.Named, "get_time", """{"type":"function","function":{"name":"get_time"}}""")]
    public async Task EachToolChoiceReachesTheUpstreamInOpenAisForm(string mode, string? function, string expected)
    {
        var request = Plain($"tool choice {mode} {function}") with
        {
            Tools = [new ToolDefinition("get_time", null, Json(TimeSchema), Strict: null)],
            ToolChoice = new ToolChoice(mode, function),
        };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse(expected), received["tool_choice"], "tool_choice");
        AssertSame(JsonNode.Parse($$$"""[{"type":"function","function":{"name":"get_time","parameters":{{{TimeSchema}}}}}]"""), received["tools"], "tools");
        Assert.False(received.ContainsKey("parallel_tool_calls"));
    }

    [Fact]
    public async Task ToolsWithoutAToolChoiceReachTheUpstreamWithoutOne()
    {
        var request = Plain("tools, no choice") with { Tools = [new ToolDefinition("get_time", "Local time", null, Strict: false)] };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse("""[{"type":"function","function":{"name":"get_time","description":"Local time","strict":false}}]"""), received["tools"], "tools");
        Assert.False(received.ContainsKey("tool_choice"));
    }

    [Theory]
    // Valid JSON Schema that Microsoft.Extensions.AI's own rendering throws on: tuple items under strict, a schema as additionalProperties.
    [InlineData("""{"type":"object","properties":{"pair":{"type":"array","items":[{"type":"string"},{"type":"number"}]}}}""", true)]
    [InlineData("""{"type":["object","null"],"properties":{"tags":{"type":"object","additionalProperties":{"type":"string"}}},"additionalProperties":{"type":"integer"}}""", null)]
    public async Task ASchemaTheAdapterCouldNotRenderStillReachesTheUpstreamAsSent(string schema, bool? strict)
    {
        var request = Plain($"odd schema {schema.Length}") with { Tools = [new ToolDefinition("odd", null, Json(schema), strict)] };

        var received = await UpstreamBodyAsync(request);

        var function = received["tools"]![0]!["function"]!;
        AssertSame(JsonNode.Parse(schema), function["parameters"], "parameters");
        AssertSame(strict is null ? null : JsonValue.Create(strict.Value), function["strict"], "strict");
    }

    public static TheoryData<string, string?, bool?, string> Formats => new()
    {
        { ResponseFormat.TextType, null, null, """{"type":"text"}""" },
        { ResponseFormat.JsonObjectType, null, null, """{"type":"json_object"}""" },
        { ResponseFormat.JsonSchemaType, ReportSchema, true, $$$"""{"type":"json_schema","json_schema":{"name":"report","schema":{{{ReportSchema}}},"strict":true}}""" },
        { ResponseFormat.JsonSchemaType, ReportSchema, false, $$$"""{"type":"json_schema","json_schema":{"name":"report","schema":{{{ReportSchema}}},"strict":false}}""" },
        // A loose schema that the adapter's own mapping would tighten (all properties required, no others allowed).
        { ResponseFormat.JsonSchemaType, TimeSchema, null, $$$"""{"type":"json_schema","json_schema":{"name":"report","schema":{{{TimeSchema}}}}}""" },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task EachResponseFormatReachesTheUpstreamInOpenAisForm(string type, string? schema, bool? strict, string expected)
    {
        var format = type == ResponseFormat.JsonSchemaType
            ? new ResponseFormat(type, "report", Schema: Json(schema!), Strict: strict)
            : new ResponseFormat(type);
        var request = Plain($"format {type} {strict} {schema?.Length}") with { ResponseFormat = format };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse(expected), received["response_format"], "response_format");
    }

    [Fact]
    public async Task ToolCallArgumentsThatAreNotJsonReachTheUpstreamUnchanged()
    {
        // The API refuses such arguments from a client; a request queued with them still runs, and nothing is rewritten.
        var request = Plain("broken arguments") with
        {
            Messages =
            [
                new ChatTurn("user", "broken arguments"),
                new ChatTurn("assistant", "Let me check.") { ToolCalls = [new ToolCall("call_9", "get_time", "{\"zone\": ")] },
                new ChatTurn("tool", "unknown") { ToolCallId = "call_9" },
            ],
        };

        var received = await UpstreamBodyAsync(request);

        AssertSame(JsonNode.Parse("""
            [{"role":"user","content":"broken arguments"},
             {"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_time","arguments":"{\"zone\": "}}]},
             {"role":"tool","tool_call_id":"call_9","content":"unknown"}]
            """), received["messages"], "messages");
    }
}
