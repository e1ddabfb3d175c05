using System.ClientModel;
using System.ComponentModel;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using VixAspire.TestSupport;
using static VixAspire.IntegrationTests.AgentClientTests;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace VixAspire.IntegrationTests;

/// <summary>
/// Tool-calling agents written with the .NET clients, unmodified, through the real gateway to the synthetic model: the
/// <c>OpenAI</c> package's <see cref="ChatClient"/> with a loop of its own, and Microsoft.Extensions.AI's
/// <see cref="FunctionInvokingChatClient"/> over an <see cref="OpenAIClient"/> pointed at the gateway.
/// </summary>
public sealed class DotNetAgentClientTests(DotNetAgentClientTests.Fixture fixture) : IClassFixture<DotNetAgentClientTests.Fixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public sealed class Fixture : ServicesFixture
    {
        public OpenAIClient OpenAi { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.002",
            }, cancellationToken: TestContext.Current.CancellationToken);
            OpenAi = new OpenAIClient(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = new Uri(Services.GatewayAddress!, "/v1") });
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ChatTool Weather() =>
        ChatTool.CreateFunctionTool(WeatherTool, "Looks up the weather forecast for a city.", BinaryData.FromString(WeatherSchema));

    [Fact]
    public async Task TheOfficialChatClientStreamsTheToolCallThenCompletesWithTextThatUsesTheResult()
    {
        var chat = fixture.OpenAi.GetChatClient("synthetic");
        var options = new ChatCompletionOptions { Tools = { Weather() } };
        List<OpenAI.Chat.ChatMessage> conversation = [new UserChatMessage($"What does {WeatherTool} say for Oslo?")];
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Arguments)>();
        ChatFinishReason? finish = null;
        var updates = 0;

        await foreach (var update in chat.CompleteChatStreamingAsync(conversation, options, Ct).WithCancellation(Ct))
        {
            updates++;
            foreach (var fragment in update.ToolCallUpdates)
            {
                var call = calls.TryGetValue(fragment.Index, out var known) ? known : (Id: fragment.ToolCallId, Name: fragment.FunctionName, Arguments: new StringBuilder());
                call.Arguments.Append(fragment.FunctionArgumentsUpdate?.ToString());
                calls[fragment.Index] = call;
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        var (id, name, arguments) = Assert.Single(calls.Values);
        Assert.Equal(WeatherTool, name);
        AssertWeatherArguments(JsonElement.Parse(arguments.ToString()));
        Assert.True(updates > 3, $"{updates} updates: the call was not streamed in fragments.");

        // The server's own whole answer to the same request holds the same call.
        using var http = fixture.Services.CreateClient();
        using var response = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "synthetic",
            messages = new[] { new { role = "user", content = $"What does {WeatherTool} say for Oslo?" } },
            tools = new[] { new { type = "function", function = new { name = WeatherTool, description = "Looks up the weather forecast for a city.", parameters = JsonElement.Parse(WeatherSchema) } } },
        }, Ct).WaitAsync(Bound, Ct);
        var expected = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal(expected.GetProperty("id").GetString(), id);
        Assert.Equal(expected.GetProperty("function").GetProperty("arguments").GetString(), arguments.ToString());

        var result = Nonce("rain");
        conversation.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString(arguments.ToString()))]));
        conversation.Add(new ToolChatMessage(id, result));

        ChatCompletion answer = await chat.CompleteChatAsync(conversation, options, Ct);

        Assert.Equal(ChatFinishReason.Stop, answer.FinishReason);
        Assert.Empty(answer.ToolCalls);
        Assert.Contains(result, Assert.Single(answer.Content).Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task FunctionInvokingChatClientRunsTheToolLoopToCompletionThroughTheGateway(bool streaming)
    {
        var result = Nonce("fog");
        var invocations = new List<(string City, int Days)>();
        var tool = AIFunctionFactory.Create(
            ([Description("A city name")] string city, [Description("How many days ahead")] int days) =>
            {
                invocations.Add((city, days));
                return result;
            },
            WeatherTool,
            "Looks up the weather forecast for a city.");
        using var client = new ChatClientBuilder(fixture.OpenAi.GetChatClient("synthetic").AsIChatClient()).UseFunctionInvocation().Build();
        var options = new ChatOptions { Tools = [tool] };
        var prompt = $"Use {WeatherTool} for Stavanger.";

        var response = streaming
            ? await client.GetStreamingResponseAsync(prompt, options, Ct).ToChatResponseAsync(Ct)
            : await client.GetResponseAsync(prompt, options, Ct);

        var (city, days) = Assert.Single(invocations);
        Assert.NotEqual("", city);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal(WeatherTool, call.Name);
        Assert.Equal(city, call.Arguments!["city"]?.ToString());
        Assert.Equal(days.ToString(System.Globalization.CultureInfo.InvariantCulture), call.Arguments["days"]?.ToString());
        var returned = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>());
        Assert.Equal(call.CallId, returned.CallId);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Stop, response.FinishReason);
        Assert.Contains(result, response.Messages[^1].Text, StringComparison.Ordinal);
    }
}
