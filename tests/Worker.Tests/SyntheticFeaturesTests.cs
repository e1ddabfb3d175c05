using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;
using VixAspire.Worker.Providers.Synthetic;

namespace VixAspire.Worker.Tests;

public class SyntheticFeaturesTests
{
    private const string WeatherSchema = """
        {"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},
         "days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}
        """;

    private const string CitySchema = """{"type":"object","properties":{"query":{"type":"string","minLength":2}},"required":["query"]}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly AIFunctionDeclaration Weather = Tool("get_weather", WeatherSchema);
    private static readonly AIFunctionDeclaration City = Tool("lookup_city", CitySchema);

    private static SyntheticChatClient Client(SyntheticBehavior behavior = SyntheticBehavior.Normal) => new(behavior,
        new FixedOptionsMonitor<SyntheticProviderOptions>(new() { FirstTokenDelay = TimeSpan.Zero, TokenDelay = TimeSpan.Zero }),
        TimeProvider.System);

    private static AIFunctionDeclaration Tool(string name, string schema) =>
        AIFunctionFactory.CreateDeclaration(name, $"The {name} tool.", JsonSchemaSamplerTests.Parse(schema));

    private static ChatOptions Options(ChatToolMode? mode, params AIFunctionDeclaration[] tools) =>
        new() { MaxOutputTokens = 20, Tools = [.. tools], ToolMode = mode };

    private static async Task<List<ChatResponseUpdate>> CollectAsync(IEnumerable<ChatMessage> messages, ChatOptions? options,
        SyntheticBehavior behavior = SyntheticBehavior.Normal)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in Client(behavior).GetStreamingResponseAsync(messages, options, Ct).WithCancellation(Ct))
        {
            updates.Add(update);
        }

        return updates;
    }

    private static Task<List<ChatResponseUpdate>> CollectAsync(string prompt, ChatOptions? options, SyntheticBehavior behavior = SyntheticBehavior.Normal) =>
        CollectAsync([new ChatMessage(ChatRole.User, prompt)], options, behavior);

    private static List<FunctionCallContent> Calls(List<ChatResponseUpdate> updates) =>
        [.. updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>()];

    private static string Text(List<ChatResponseUpdate> updates) => string.Concat(updates.Select(u => u.Text));

    private static string ArgumentsJson(FunctionCallContent call) => JsonSerializer.Serialize(call.Arguments);

    private static UsageDetails Usage(List<ChatResponseUpdate> updates) =>
        Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>()).Details;

    // What the client answers for a prompt when tools play no part, to compare with.
    private static async Task<string> PlainTextAsync(string prompt) => Text(await CollectAsync(prompt, new ChatOptions { MaxOutputTokens = 20 }));

    [Fact]
    public async Task RequiredToolChoiceCallsTheFirstToolWhenThePromptNamesNone()
    {
        var updates = await CollectAsync("what is it like outside", Options(ChatToolMode.RequireAny, Weather, City));

        var call = Assert.Single(Calls(updates));
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("call_1", call.CallId);
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
        Assert.Equal("", Text(updates));
    }

    [Fact]
    public async Task RequiredToolChoiceCallsTheToolsThePromptNames()
    {
        var updates = await CollectAsync("find it with lookup_city", Options(ChatToolMode.RequireAny, Weather, City));

        Assert.Equal(["lookup_city"], Calls(updates).Select(c => c.Name));
    }

    [Fact]
    public async Task ANamedToolChoiceCallsThatToolWhateverThePromptNames()
    {
        var updates = await CollectAsync("use get_weather please", Options(ChatToolMode.RequireSpecific("lookup_city"), Weather, City));

        Assert.Equal(["lookup_city"], Calls(updates).Select(c => c.Name));
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
    }

    [Fact]
    public async Task ANamedToolChoiceThatNamesNoToolIsAClearError()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => CollectAsync("hi", Options(ChatToolMode.RequireSpecific("nope"), Weather)));

        Assert.Contains("'nope'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoneToolChoiceNeverCallsEvenAToolThePromptNames()
    {
        const string Prompt = "use get_weather please";

        var updates = await CollectAsync(Prompt, Options(ChatToolMode.None, Weather));

        Assert.Empty(Calls(updates));
        Assert.Equal(await PlainTextAsync(Prompt), Text(updates));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(true)]
    public async Task AutoCallsEveryToolTheLastUserMessageNamesInItsOrder(bool? allowMultiple)
    {
        var options = Options(ChatToolMode.Auto, Weather, City);
        options.AllowMultipleToolCalls = allowMultiple;

        var updates = await CollectAsync("First LOOKUP_CITY, then get_weather.", options);

        Assert.Equal(["lookup_city", "get_weather"], Calls(updates).Select(c => c.Name));
        Assert.Equal(["call_1", "call_2"], Calls(updates).Select(c => c.CallId));
        Assert.Equal(2, updates.Count);
        Assert.Null(updates[0].FinishReason);
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
    }

    [Fact]
    public async Task WithoutParallelCallsOnlyTheFirstNamedToolIsCalled()
    {
        var options = Options(null, Weather, City);
        options.AllowMultipleToolCalls = false;

        var updates = await CollectAsync("get_weather and lookup_city", options);

        Assert.Equal(["get_weather"], Calls(updates).Select(c => c.Name));
    }

    [Theory]
    [InlineData("what is the weather")]
    [InlineData("try get_weathering or my_get_weather")]
    public async Task AutoAnswersTextWhenThePromptNamesNoToolAsAWholeWord(string prompt)
    {
        var updates = await CollectAsync(prompt, Options(ChatToolMode.Auto, Weather));

        Assert.Empty(Calls(updates));
        Assert.Equal(await PlainTextAsync(prompt), Text(updates));
    }

    [Fact]
    public async Task OnlyTheLastUserMessageCountsForNamingATool()
    {
        ChatMessage[] messages = [new(ChatRole.User, "use get_weather"), new(ChatRole.Assistant, "ok"), new(ChatRole.User, "never mind")];

        var updates = await CollectAsync(messages, Options(ChatToolMode.Auto, Weather));

        Assert.Empty(Calls(updates));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
    }

    public static TheoryData<string> ToolSchemas => new()
    {
        WeatherSchema,
        CitySchema,
        """{"type":"object","properties":{}}""",
        """
        {"type":"object","properties":{
          "order":{"$ref":"#/$defs/order"},
          "priority":{"type":"string","enum":["low","high"]},
          "gift":{"type":"boolean"},
          "notes":{"type":["string","null"],"maxLength":10}},
         "required":["order","priority","gift"],
         "$defs":{
          "order":{"type":"object","properties":{
            "id":{"type":"string","format":"uuid"},
            "lines":{"type":"array","minItems":1,"maxItems":3,"items":{"$ref":"#/$defs/line"}},
            "placed":{"type":"string","format":"date-time"}},"required":["id","lines"],"additionalProperties":false},
          "line":{"type":"object","properties":{
            "sku":{"type":"string","pattern":"^[A-Z]{2}\\d{3}$"},
            "quantity":{"type":"integer","minimum":1,"maximum":99},
            "price":{"type":"number","exclusiveMinimum":0,"multipleOf":0.01}},"required":["sku","quantity","price"]}}}
        """,
    };

    [Theory]
    [MemberData(nameof(ToolSchemas))]
    public async Task ArgumentsAreValidForTheToolsSchema(string schemaJson)
    {
        var tool = Tool("place_order", schemaJson);

        foreach (var prompt in new[] { "one", "two", "three", "four", "five" })
        {
            var call = Assert.Single(Calls(await CollectAsync(prompt, Options(ChatToolMode.RequireAny, tool))));

            Assert.Empty(SchemaValidator.Errors(tool.JsonSchema, ArgumentsJson(call)));
        }
    }

    [Fact]
    public async Task TheSameRequestGivesTheSameCallsAndAnotherPromptOtherArguments()
    {
        var options = Options(ChatToolMode.RequireAny, Weather, City);

        var first = await CollectAsync("get_weather and lookup_city", options);
        var again = await CollectAsync("get_weather and lookup_city", options);
        var other = await CollectAsync("lookup_city and get_weather, in other words", options);

        Assert.Equal(Calls(first).Select(c => (c.CallId, c.Name, ArgumentsJson(c))), Calls(again).Select(c => (c.CallId, c.Name, ArgumentsJson(c))));
        Assert.NotEqual(Calls(first).Select(ArgumentsJson), Calls(other).Select(ArgumentsJson).Reverse());
    }

    [Fact]
    public async Task ToolCallsReportUsageWithThePromptsWordCount()
    {
        ChatMessage[] messages = [new(ChatRole.System, "be brief"), new(ChatRole.User, "call get_weather now")];

        var updates = await CollectAsync(messages, Options(null, Weather));

        var usage = Usage(updates);
        Assert.Equal(SyntheticReply.InputTokens(messages), usage.InputTokenCount);
        Assert.Equal(5, usage.InputTokenCount);
        Assert.Equal(SyntheticReply.JsonFragments(ArgumentsJson(Assert.Single(Calls(updates)))).Count, usage.OutputTokenCount);
        Assert.Same(updates[^1], updates.Single(u => u.Contents.OfType<UsageContent>().Any()));
    }

    [Fact]
    public async Task PlainTextReportsUsageOnItsLastTokenWithoutChangingItsTokens()
    {
        var updates = await CollectAsync("count these words", new ChatOptions { MaxOutputTokens = 9 });

        Assert.Equal(9, updates.Count);
        Assert.Equal(3, Usage(updates).InputTokenCount);
        Assert.Equal(9, Usage(updates).OutputTokenCount);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => SyntheticChatClient.TokenText(SyntheticChatClient.Seed([new ChatMessage(ChatRole.User, "count these words")]), i)),
            updates.Select(u => u.Text));
    }

    private static ChatMessage[] AfterCall(string result) =>
    [
        new(ChatRole.User, "what is the weather? use get_weather"),
        new(ChatRole.Assistant, [new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Oslo" })]),
        new(ChatRole.Tool, [new FunctionResultContent("call_1", result)]),
    ];

    [Fact]
    public async Task AfterAToolResultItAnswersWithTheResultAndStops()
    {
        const string Result = """{"temperature": 21, "sky": "clear"}""";

        var updates = await CollectAsync(AfterCall(Result), Options(ChatToolMode.Auto, Weather));

        Assert.Empty(Calls(updates));
        var text = Text(updates);
        Assert.Contains(Result, text, StringComparison.Ordinal);
        Assert.Contains("get_weather", text, StringComparison.Ordinal);
        Assert.True(updates.Count > 3, "the answer came in one piece");
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
        Assert.Equal(SyntheticReply.InputTokens(AfterCall(Result)), Usage(updates).InputTokenCount);
    }

    [Fact]
    public async Task ANewCallAfterEarlierCallsGetsTheNextId()
    {
        ChatMessage[] messages = [.. AfterCall("sunny"), new(ChatRole.Assistant, "It is sunny."), new(ChatRole.User, "and lookup_city too")];

        var call = Assert.Single(Calls(await CollectAsync(messages, Options(null, Weather, City))));

        Assert.Equal("call_2", call.CallId);
    }

    [Fact]
    public async Task ALongToolResultIsCappedAndMaxTokensStillBoundsTheAnswer()
    {
        var result = string.Join(' ', Enumerable.Repeat("word", 10_000));

        var updates = await CollectAsync(AfterCall(result), new ChatOptions { MaxOutputTokens = 8 });

        Assert.Equal(8, updates.Count);
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        var whole = await CollectAsync(AfterCall(result), new ChatOptions { MaxOutputTokens = 100_000 });
        Assert.InRange(Text(whole).Length, 1, 400);
        Assert.Equal(ChatFinishReason.Stop, whole[^1].FinishReason);
    }

    [Fact]
    public async Task ATwoStepAgentLoopCompletesThroughFunctionInvocation()
    {
        var invoked = 0;
        var weather = AIFunctionFactory.Create((string city) => { invoked++; return $"{city}: 19 degrees and windy"; }, "get_weather");
        using var agent = new ChatClientBuilder(Client()).UseFunctionInvocation().Build();

        var response = await agent.GetResponseAsync([new ChatMessage(ChatRole.User, "Use get_weather for me.")],
            new ChatOptions { Tools = [weather], MaxOutputTokens = 200 }, Ct);

        Assert.Equal(1, invoked);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Contains($"{call.Arguments!["city"]}: 19 degrees and windy", response.Messages[^1].Text, StringComparison.Ordinal);
    }

    private static readonly string OrderSchema = """
        {"type":"object","properties":{"title":{"type":"string","maxLength":40},"count":{"type":"integer","minimum":0,"maximum":3},
         "ratio":{"type":"number","minimum":0,"maximum":1},"done":{"type":"boolean"},"kind":{"enum":["a","b"]},
         "items":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]},"minItems":2}},
         "required":["title","count","ratio","done","kind","items"],"additionalProperties":false}
        """;

    [Theory]
    [InlineData(1)]
    [InlineData(500)]
    public async Task AJsonSchemaResponseIsWholeValidJsonInSeveralTokensWhateverMaxTokens(int maxTokens)
    {
        var schema = JsonSchemaSamplerTests.Parse(OrderSchema);
        var options = new ChatOptions { MaxOutputTokens = maxTokens, ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "order") };

        var updates = await CollectAsync("make an order", options);

        Assert.True(updates.Count > 5, $"{updates.Count} updates");
        Assert.Empty(SchemaValidator.Errors(schema, Text(updates)));
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
        Assert.Equal(updates.Count, Usage(updates).OutputTokenCount);
        Assert.Equal(Text(updates), Text(await CollectAsync("make an order", options)));
    }

    [Fact]
    public async Task AJsonObjectResponseIsAJsonObject()
    {
        var updates = await CollectAsync("answer in json", new ChatOptions { MaxOutputTokens = 5, ResponseFormat = ChatResponseFormat.Json });

        var answer = Assert.IsType<JsonObject>(JsonNode.Parse(Text(updates)));
        Assert.Equal(JsonValueKind.String, answer["answer"]!.GetValueKind());
        Assert.True(updates.Count > 1);
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
    }

    [Fact]
    public async Task AJsonObjectResponseAfterAToolResultCarriesTheResult()
    {
        var updates = await CollectAsync(AfterCall("rain"), new ChatOptions { ResponseFormat = ChatResponseFormat.Json });

        var answer = Assert.IsType<JsonObject>(JsonNode.Parse(Text(updates)));
        Assert.Contains("rain", answer["answer"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheReasoningModelReasonsFirstThenAnswersAsTheSyntheticModelDoes()
    {
        var options = new ChatOptions { MaxOutputTokens = 12 };

        var updates = await CollectAsync("think about it", options, SyntheticBehavior.Reasoning);
        var plain = await CollectAsync("think about it", options);

        var reasoning = updates.TakeWhile(u => u.Contents.Any(c => c is TextReasoningContent)).ToList();
        Assert.True(reasoning.Count > 2, $"{reasoning.Count} reasoning fragments");
        Assert.All(reasoning, u => Assert.Equal("", u.Text));
        Assert.All(updates.Skip(reasoning.Count), u => Assert.DoesNotContain(u.Contents, c => c is TextReasoningContent));
        Assert.Equal(Text(plain), Text(updates));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        Assert.Equal(reasoning.Count, Usage(updates).ReasoningTokenCount);
        Assert.Equal(12 + reasoning.Count, Usage(updates).OutputTokenCount);
        var again = await CollectAsync("think about it", options, SyntheticBehavior.Reasoning);
        Assert.Equal(Thoughts(updates), Thoughts(again));
    }

    private static string Thoughts(List<ChatResponseUpdate> updates) =>
        string.Concat(updates.SelectMany(u => u.Contents).OfType<TextReasoningContent>().Select(r => r.Text));

    [Fact]
    public async Task TheReasoningModelReasonsBeforeItCallsATool()
    {
        var updates = await CollectAsync("use get_weather", Options(null, Weather), SyntheticBehavior.Reasoning);

        Assert.IsType<TextReasoningContent>(updates[0].Contents[0]);
        Assert.Equal("get_weather", Assert.Single(Calls(updates)).Name);
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
    }

    [Fact]
    public async Task FailStillFailsAfterItsTokensWhenATurnCallsTools()
    {
        var client = new SyntheticChatClient(SyntheticBehavior.Fail,
            new FixedOptionsMonitor<SyntheticProviderOptions>(new() { FirstTokenDelay = TimeSpan.Zero, TokenDelay = TimeSpan.Zero, FailAfterTokens = 1 }),
            TimeProvider.System);
        var seen = 0;

        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "get_weather lookup_city")], Options(null, Weather, City), Ct))
            {
                seen++;
            }
        });
        Assert.Equal(1, seen);
    }

    [Fact]
    public async Task HostileSchemasInToolsAndResponseFormatFinishQuicklyAndBounded()
    {
        var deep = JsonSchemaSamplerTests.Deep;
        var wide = JsonSchemaSamplerTests.Huge;
        var clock = Stopwatch.StartNew();

        var calls = Calls(await CollectAsync("deep_tool wide_tool", Options(null,
            AIFunctionFactory.CreateDeclaration("deep_tool", null, deep), AIFunctionFactory.CreateDeclaration("wide_tool", null, wide))));
        var deepJson = await CollectAsync("x", new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(deep) });
        var wideJson = await CollectAsync("x", new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(wide) });

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Equal(["deep_tool", "wide_tool"], calls.Select(c => c.Name));
        Assert.All(calls, c => Assert.NotNull(JsonNode.Parse(ArgumentsJson(c)) as JsonObject));
        Assert.IsType<JsonObject>(JsonNode.Parse(Text(deepJson)));
        Assert.IsType<JsonObject>(JsonNode.Parse(Text(wideJson)));
        Assert.InRange(wideJson.Count, 2, SyntheticReply.MaxJsonFragments);
    }
}
