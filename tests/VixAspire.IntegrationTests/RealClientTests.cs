using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The JavaScript clients people use, npm <c>openai</c> and the Vercel AI SDK, run unmodified with the machine's
/// Node.js against the real services behind the real gateway (<see cref="NodeClients"/>, scripts in <c>tests/js</c>).
/// What each client reports is held to what the server itself sends for the same request.
/// </summary>
public sealed class RealClientTests(RealClientTests.Fixture fixture) : IClassFixture<RealClientTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        /// <summary>The OpenAI-style base URL the clients are given: the gateway's <c>/v1</c>.</summary>
        public Uri BaseUrl { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.005",
            });
            BaseUrl = new Uri(Services.GatewayAddress!, "/v1");
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static object[] UserSays(string text) => [new { role = "user", content = text }];

    /// <summary>Runs the script against the gateway; what the client reported goes to the test's output.</summary>
    private async Task<JsonElement> RunAsync(string script, object arguments)
    {
        var seen = await NodeClients.RunAsync(script, fixture.BaseUrl, arguments, cancellationToken: Ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"{script} reported: {seen}");
        return seen;
    }

    /// <summary>The server's own whole answer to the request (<c>stream: false</c>, read as raw JSON).</summary>
    private async Task<JsonElement> WholeAnswerAsync(object[] messages, int maxTokens, string model = "synthetic")
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new { model, messages, max_tokens = maxTokens }, Ct)
            .WaitAsync(Bound, Ct);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private async Task<string> WholeTextAsync(object[] messages, int maxTokens) =>
        (await WholeAnswerAsync(messages, maxTokens)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    /// <summary>The server's stream for the request, as raw <c>data:</c> payloads (the last is <c>[DONE]</c>).</summary>
    private async Task<List<string>> RawStreamAsync(object[] messages, int maxTokens)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "synthetic",
            messages,
            max_tokens = maxTokens,
            stream = true,
            stream_options = new { include_usage = true },
        }, Ct).WaitAsync(Bound, Ct);
        return [.. (await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct)).Split('\n')
            .Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..])];
    }

    private static string DeltaText(IEnumerable<string> data)
    {
        var text = new StringBuilder();
        foreach (var chunk in data.Where(d => d != "[DONE]").Select(d => JsonDocument.Parse(d).RootElement))
        {
            foreach (var choice in chunk.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var content))
                {
                    text.Append(content.GetString());
                }
            }
        }

        return text.ToString();
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    [Fact]
    public async Task TheNpmOpenAiClientStreamsTheTextTheServerSendsAndStopsForLengthAtMaxTokens()
    {
        var messages = UserSays("stream through the npm client");

        var seen = await RunAsync("openai-chat-stream.mjs", new { mode = "stream", messages, maxTokens = 7 });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        var raw = await RawStreamAsync(messages, 7);
        Assert.Equal("[DONE]", raw[^1]);
        var text = seen.GetProperty("text").GetString();
        Assert.Equal(DeltaText(raw), text);
        Assert.Equal(await WholeTextAsync(messages, 7), text);
        Assert.Equal("length", seen.GetProperty("finishReason").GetString());
        Assert.Equal(7, seen.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // Every data line but [DONE] reached the application as one chunk: role, 7 tokens, finish, usage.
        Assert.Equal(raw.Count - 1, seen.GetProperty("chunks").GetInt32());
        Assert.StartsWith("chatcmpl-", Assert.Single(Strings(seen.GetProperty("ids"))), StringComparison.Ordinal);
        Assert.Equal(["chat.completion.chunk"], Strings(seen.GetProperty("objects")));
        Assert.Equal(["synthetic"], Strings(seen.GetProperty("models")));
        Assert.Equal(["assistant"], Strings(seen.GetProperty("roles")));
    }

    [Fact]
    public async Task TheNpmOpenAiClientGetsTheSameTextWhole()
    {
        var messages = new object[] { new { role = "system", content = "be brief" }, new { role = "user", content = "whole, through npm" } };

        var seen = await RunAsync("openai-chat-stream.mjs", new { mode = "whole", messages, maxTokens = 5 });

        Assert.Equal(JsonValueKind.Null, seen.GetProperty("error").ValueKind);
        Assert.Equal(DeltaText(await RawStreamAsync(messages, 5)), seen.GetProperty("text").GetString());
        Assert.Equal("length", seen.GetProperty("finishReason").GetString());
        Assert.Equal(5, seen.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(1, seen.GetProperty("choices").GetInt32());
        Assert.StartsWith("chatcmpl-", Assert.Single(Strings(seen.GetProperty("ids"))), StringComparison.Ordinal);
        Assert.Equal(["chat.completion"], Strings(seen.GetProperty("objects")));
        Assert.Equal(["assistant"], Strings(seen.GetProperty("roles")));
    }

    [Fact]
    public async Task TheNpmOpenAiClientListsTheModelsTheServerRoutesSyntheticAmongThem()
    {
        using var client = fixture.Services.CreateClient();
        var listed = await client.GetFromJsonAsync<JsonElement>("/v1/models", Ct).WaitAsync(Bound, Ct);

        var seen = await RunAsync("openai-models.mjs", new { });

        var ids = Strings(seen.GetProperty("ids"));
        Assert.Contains("synthetic", ids);
        Assert.Equal(listed.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()), ids);
        Assert.All(Strings(seen.GetProperty("objects")), o => Assert.Equal("model", o));
    }

    public static TheoryData<string, bool?> AiSdkProviders => new()
    {
        // As an application writes it: usage is asked for only when the provider is told to.
        { "openai-compatible", null },
        { "openai-compatible", true },
        // @ai-sdk/openai's chat-completions model, which always asks for usage.
        { "openai", null },
    };

    [Theory]
    [MemberData(nameof(AiSdkProviders))]
    public async Task TheAiSdksStreamTextGetsTheSameTextAndStopsForLength(string provider, bool? includeUsage)
    {
        const string prompt = "stream through the AI SDK";

        var seen = await RunAsync("ai-sdk-stream.mjs", new { provider, prompt, maxTokens = 6, includeUsage });

        Assert.Empty(seen.GetProperty("errors").EnumerateArray());
        Assert.Equal(await WholeTextAsync(UserSays(prompt), 6), seen.GetProperty("text").GetString());
        Assert.Equal("length", seen.GetProperty("finishReason").GetString());
        Assert.True(seen.GetProperty("parts").GetInt32() > 1, "The text arrived in one piece, not streamed.");
        if (includeUsage == true || provider == "openai")
        {
            Assert.Equal(6, seen.GetProperty("usage").GetProperty("outputTokens").GetInt32());
        }
    }

    [Theory]
    [InlineData("stream")]
    [InlineData("whole")]
    public async Task AnUnknownModelMakesTheNpmClientThrowAnApiErrorWithStatus404AndTheServersMessage(string mode)
    {
        var messages = UserSays("no such model");
        var server = (await WholeAnswerAsync(messages, 3, "gpt-nonexistent")).GetProperty("error");

        var seen = await RunAsync("openai-chat-stream.mjs", new { mode, model = "gpt-nonexistent", messages, maxTokens = 3 });

        var error = seen.GetProperty("error");
        Assert.Equal("NotFoundError", error.GetProperty("name").GetString());
        Assert.Equal(404, error.GetProperty("status").GetInt32());
        Assert.Equal($"404 {server.GetProperty("message").GetString()}", error.GetProperty("message").GetString());
        Assert.Contains("gpt-nonexistent", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(server.GetProperty("code").GetString(), error.GetProperty("code").GetString());
        Assert.Equal(server.GetProperty("type").GetString(), error.GetProperty("type").GetString());
        Assert.Equal("", seen.GetProperty("text").GetString());
    }

    [Fact]
    public async Task AGenerationThatFailsMidStreamMakesTheNpmClientThrowAfterTheTextBeforeIt()
    {
        var messages = UserSays("fail through npm");

        var seen = await RunAsync("openai-chat-stream.mjs", new { mode = "stream", model = "synthetic-fail", messages, maxTokens = 10 });

        var error = seen.GetProperty("error");
        Assert.Equal("APIError", error.GetProperty("name").GetString());
        Assert.Equal("provider_error", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, seen.GetProperty("finishReason").ValueKind);
        Assert.NotEqual("", seen.GetProperty("text").GetString());
    }

    [Fact]
    public async Task AScriptThatFailsSurfacesItsStderr()
    {
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            NodeClients.RunAsync("openai-chat-stream.mjs", new Uri("http://127.0.0.1:1/v1"), new { mode = "stream", messages = UserSays("x") },
                cancellationToken: Ct));

        Assert.Contains("exited with 1", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Connection error", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AScriptStillRunningAtItsTimeoutIsKilledAndFailsTheTest()
    {
        // synthetic-stall never sends a first token, so the client waits on its stream until it is killed.
        var failure = await Assert.ThrowsAsync<TimeoutException>(() =>
            NodeClients.RunAsync("openai-chat-stream.mjs", fixture.BaseUrl, new { mode = "stream", model = "synthetic-stall", messages = UserSays("x") },
                timeout: TimeSpan.FromSeconds(2), cancellationToken: Ct));

        Assert.Contains("was killed", failure.Message, StringComparison.Ordinal);
    }
}
