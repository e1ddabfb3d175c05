using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using VixAspire.Contracts;
using VixAspire.Worker.Providers;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatResponseFormat = Microsoft.Extensions.AI.ChatResponseFormat;

namespace VixAspire.Worker.Tests;

/// <summary>
/// The queued request mapped onto Microsoft.Extensions.AI: what every provider (the synthetic ones included) sees in
/// the messages' contents and the options. What an OpenAI upstream receives is <see cref="UpstreamRequestTests"/>' subject.
/// </summary>
public sealed class ChatRequestMappingTests
{
    private const string PixelBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    private static readonly JsonElement Schema = JsonElement.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""");

    private static InferenceRequest Request(params ChatTurn[] turns) => new("synthetic", turns, MaxTokens: 10, Temperature: null);

    private static ChatMessage Single(ChatTurn turn) => Assert.Single(ChatRequestMapping.ToChatMessages(Request(turn)));

    [Theory]
    [InlineData("system")]
    [InlineData("developer")]
    [InlineData("user")]
    [InlineData("assistant")]
    public void EachRoleKeepsItsNameAndText(string role)
    {
        var message = Single(new ChatTurn(role, $"a {role} turn") { Name = "writer-1" });

        Assert.Equal(role, message.Role.Value);
        Assert.Equal($"a {role} turn", Assert.IsType<TextContent>(Assert.Single(message.Contents)).Text);
        Assert.Equal("writer-1", message.AuthorName);
    }

    [Fact]
    public void ContentPartsBecomeTextAndImagesWithTheirDetail()
    {
        var message = Single(new ChatTurn("user", null)
        {
            Parts =
            [
                new ContentPart(ContentPart.TextType, Text: "look"),
                new ContentPart(ContentPart.ImageType, ImageUrl: "https://example.com/cat.png", Detail: "high"),
                new ContentPart(ContentPart.ImageType, ImageUrl: $"data:image/png;base64,{PixelBase64}", Detail: "low"),
                new ContentPart(ContentPart.ImageType, ImageUrl: "http://example.com/dog.jpg"),
            ],
        });

        Assert.Collection(message.Contents,
            c => Assert.Equal("look", Assert.IsType<TextContent>(c).Text),
            c =>
            {
                var image = Assert.IsType<UriContent>(c);
                Assert.Equal(new Uri("https://example.com/cat.png"), image.Uri);
                Assert.True(image.HasTopLevelMediaType("image"));
                Assert.Equal("high", image.AdditionalProperties?[ChatRequestMapping.DetailKey]);
            },
            c =>
            {
                var image = Assert.IsType<DataContent>(c);
                Assert.Equal("image/png", image.MediaType);
                Assert.Equal(Convert.FromBase64String(PixelBase64), image.Data.ToArray());
                Assert.Equal("low", image.AdditionalProperties?[ChatRequestMapping.DetailKey]);
            },
            c => Assert.Null(Assert.IsType<UriContent>(c).AdditionalProperties));
    }

    [Fact]
    public void AnImageThatIsNeitherAUrlNorADataUriIsLeftOutRatherThanThrown()
    {
        var message = Single(new ChatTurn("user", null)
        {
            Parts = [new ContentPart(ContentPart.TextType, Text: "see"), new ContentPart(ContentPart.ImageType, ImageUrl: "not a url"),
                new ContentPart(ContentPart.ImageType, ImageUrl: "data:image/png;base64,@@@")],
        });

        Assert.Equal("see", Assert.IsType<TextContent>(Assert.Single(message.Contents)).Text);
    }

    [Fact]
    public void AnAssistantsToolCallsBecomeFunctionCallsWithTheirArgumentsParsed()
    {
        var message = Single(new ChatTurn("assistant", "")
        {
            ToolCalls = [new ToolCall("call_1", "get_weather", """{"city": "Paris", "days": 3, "hourly": [1, 2]}"""), new ToolCall("call_2", "get_time", "{}")],
        });

        Assert.Equal(ChatRole.Assistant, message.Role);
        Assert.Collection(message.Contents,
            c =>
            {
                var call = Assert.IsType<FunctionCallContent>(c);
                Assert.Equal(("call_1", "get_weather"), (call.CallId, call.Name));
                Assert.Equal(["city", "days", "hourly"], call.Arguments!.Keys);
                Assert.Equal("Paris", ((JsonElement)call.Arguments["city"]!).GetString());
                Assert.Equal(3, ((JsonElement)call.Arguments["days"]!).GetInt32());
                Assert.Equal("[1, 2]", ((JsonElement)call.Arguments["hourly"]!).GetRawText());
            },
            c => Assert.Empty(Assert.IsType<FunctionCallContent>(c).Arguments!));
    }

    [Theory]
    [InlineData("{\"city\": ")]
    [InlineData("[1, 2]")]
    [InlineData("")]
    public void ArgumentsThatAreNotAJsonObjectDoNotThrowAndReachOpenAiAsSent(string arguments)
    {
        var message = Single(new ChatTurn("assistant", null) { ToolCalls = [new ToolCall("call_1", "get_weather", arguments)] });

        var call = Assert.IsType<FunctionCallContent>(Assert.Single(message.Contents));
        Assert.Null(call.Arguments);
        Assert.NotNull(call.Exception);
        // The OpenAI-typed copy, as the OpenAI pipeline makes it just before its adapter.
        Assert.Null(message.RawRepresentation);
        DeclaredToolsChatClient.WithOpenAiCopies([message]);
        var raw = Assert.IsType<AssistantChatMessage>(message.RawRepresentation);
        Assert.Equal(arguments, Assert.Single(raw.ToolCalls).FunctionArguments.ToString());
    }

    [Theory]
    [InlineData("{\"temp\": 21}")]
    [InlineData("plain \"quoted\" text")]
    public void AToolTurnBecomesAFunctionResultHoldingTheTextUnchanged(string result)
    {
        var message = Single(new ChatTurn("tool", result) { ToolCallId = "call_1" });

        Assert.Equal(ChatRole.Tool, message.Role);
        var content = Assert.IsType<FunctionResultContent>(Assert.Single(message.Contents));
        Assert.Equal("call_1", content.CallId);
        Assert.Equal(result, Assert.IsType<string>(content.Result));
    }

    [Fact]
    public void AToolTurnSentAsTextPartsHoldsTheirText()
    {
        var message = Single(new ChatTurn("tool", null)
        {
            ToolCallId = "call_1",
            Parts = [new ContentPart(ContentPart.TextType, Text: "first "), new ContentPart(ContentPart.TextType, Text: "second")],
        });

        Assert.Equal("first second", Assert.IsType<FunctionResultContent>(Assert.Single(message.Contents)).Result);
    }

    [Fact]
    public void EveryOptionIsMapped()
    {
        var request = Request(new ChatTurn("user", "hi")) with
        {
            Temperature = 0.25f,
            TopP = 0.5f,
            FrequencyPenalty = 0.75f,
            PresencePenalty = -1f,
            Seed = 7,
            Stop = ["END", "\n\n"],
            Tools = [new ToolDefinition("get_weather", "Weather", Schema, Strict: true), new ToolDefinition("get_time", null, null, null)],
            ToolChoice = new ToolChoice(ToolChoice.Auto),
            ParallelToolCalls = false,
            ReasoningEffort = "high",
        };

        var options = ChatRequestMapping.ToChatOptions(request);

        Assert.Equal(request.MaxTokens, options.MaxOutputTokens);
        Assert.Equal((request.Temperature, request.TopP, request.FrequencyPenalty, request.PresencePenalty, request.Seed),
            (options.Temperature, options.TopP, options.FrequencyPenalty, options.PresencePenalty, options.Seed));
        Assert.Equal(request.Stop, options.StopSequences);
        Assert.Equal(ChatToolMode.Auto, options.ToolMode);
        Assert.False(options.AllowMultipleToolCalls);
        Assert.Equal(ReasoningEffort.High, options.Reasoning?.Effort);
        Assert.Collection(options.Tools!,
            t =>
            {
                var declaration = Assert.IsAssignableFrom<AIFunctionDeclaration>(t);
                Assert.Equal(("get_weather", "Weather"), (declaration.Name, declaration.Description));
                Assert.True(JsonElement.DeepEquals(Schema, declaration.JsonSchema));
                Assert.Equal(true, declaration.AdditionalProperties[ChatRequestMapping.StrictKey]);
            },
            t =>
            {
                var declaration = Assert.IsAssignableFrom<AIFunctionDeclaration>(t);
                Assert.Equal("object", declaration.JsonSchema.GetProperty("type").GetString());
                Assert.False(declaration.AdditionalProperties.ContainsKey(ChatRequestMapping.StrictKey));
            });
    }

    public static TheoryData<string, string?, ChatToolMode> ToolChoices => new()
    {
        { ToolChoice.None, null, ChatToolMode.None },
        { ToolChoice.Auto, null, ChatToolMode.Auto },
        { ToolChoice.Required, null, ChatToolMode.RequireAny },
        { ToolChoice.Named, "get_weather", ChatToolMode.RequireSpecific("get_weather") },
    };

    [Theory]
    [MemberData(nameof(ToolChoices))]
    public void EachToolChoiceBecomesItsToolMode(string mode, string? function, ChatToolMode expected)
    {
        var options = ChatRequestMapping.ToChatOptions(Request(new ChatTurn("user", "hi")) with { ToolChoice = new ToolChoice(mode, function) });

        Assert.Equal(expected, options.ToolMode);
    }

    [Fact]
    public void EachResponseFormatBecomesItsChatResponseFormat()
    {
        ChatResponseFormat? Format(ResponseFormat format) =>
            ChatRequestMapping.ToChatOptions(Request(new ChatTurn("user", "hi")) with { ResponseFormat = format }).ResponseFormat;

        Assert.IsType<ChatResponseFormatText>(Format(new ResponseFormat(ResponseFormat.TextType)));
        Assert.Null(Assert.IsType<ChatResponseFormatJson>(Format(new ResponseFormat(ResponseFormat.JsonObjectType))).Schema);
        var json = Assert.IsType<ChatResponseFormatJson>(Format(new ResponseFormat(ResponseFormat.JsonSchemaType, "report", "A report", Schema, Strict: true)));
        Assert.True(JsonElement.DeepEquals(Schema, json.Schema!.Value));
        Assert.Equal(("report", "A report"), (json.SchemaName, json.SchemaDescription));
    }

    [Theory]
    [InlineData("none", ReasoningEffort.None)]
    [InlineData("minimal", ReasoningEffort.Low)]
    [InlineData("low", ReasoningEffort.Low)]
    [InlineData("medium", ReasoningEffort.Medium)]
    [InlineData("high", ReasoningEffort.High)]
    [InlineData("xhigh", ReasoningEffort.ExtraHigh)]
    public void EachReasoningEffortBecomesTheNearestLevel(string effort, ReasoningEffort expected)
    {
        var options = ChatRequestMapping.ToChatOptions(Request(new ChatTurn("user", "hi")) with { ReasoningEffort = effort });

        Assert.Equal(expected, options.Reasoning?.Effort);
    }

    [Fact]
    public void APlainTextRequestNeedsNoOpenAiOptions()
    {
        var options = ChatRequestMapping.ToChatOptions(Request(new ChatTurn("user", "hi")));

        Assert.Null(options.RawRepresentationFactory);
        Assert.Null(options.Tools);
        Assert.Null(options.StopSequences);
    }

    [Fact]
    public void EachAttemptGetsOpenAiOptionsOfItsOwn()
    {
        // The adapter fills in the object it is given, and a retry or fallback asks again.
        var options = ChatRequestMapping.ToChatOptions(Request(new ChatTurn("user", "hi")) with { User = "user-1", Metadata = new Dictionary<string, string> { ["k"] = "v" } });

        var first = Assert.IsType<ChatCompletionOptions>(options.RawRepresentationFactory!(null!));
        var second = Assert.IsType<ChatCompletionOptions>(options.RawRepresentationFactory!(null!));

        Assert.NotSame(first, second);
        Assert.Equal(("user-1", "v"), (first.EndUserId, first.Metadata["k"]));
    }
}
