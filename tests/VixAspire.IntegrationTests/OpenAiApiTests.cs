using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The OpenAI-compatible API through the real gateway, called by the official OpenAI .NET client unmodified,
/// and checked byte-level where the client would hide a mistake.
/// </summary>
public sealed class OpenAiApiTests(OpenAiApiTests.Fixture fixture) : IClassFixture<OpenAiApiTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public OpenAIClient OpenAi { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.010",
                ["Streaming:DisconnectGrace"] = "00:00:00.300",
                // A vanished token stream is noticed at the next heartbeat.
                ["Streaming:HeartbeatInterval"] = "00:00:01",
            });
            OpenAi = new OpenAIClient(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = new Uri(Services.GatewayAddress!, "/v1") });
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>The same prompt through /infer/stream: the synthetic model is deterministic, so the texts must match.</summary>
    private async Task<string> ReferenceTextAsync(string prompt, int maxTokens)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt, max_tokens = maxTokens }), Ct);
        return (await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).Text();
    }

    [Fact]
    public async Task TheOfficialClientStreamsAChatCompletion()
    {
        var chat = fixture.OpenAi.GetChatClient("synthetic");
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream via openai")],
            new ChatCompletionOptions { MaxOutputTokenCount = 7 }, Ct).WithCancellation(Ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(await ReferenceTextAsync("stream via openai", 7), text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        // The official client asks for usage when it streams (stream_options.include_usage).
        Assert.NotNull(usage);
        Assert.Equal(7, usage.OutputTokenCount);
    }

    [Fact]
    public async Task TheOfficialClientGetsAWholeChatCompletion()
    {
        var chat = fixture.OpenAi.GetChatClient("synthetic");

        ChatCompletion completion = await chat.CompleteChatAsync([new SystemChatMessage("be brief"), new UserChatMessage("whole answer")],
            new ChatCompletionOptions { MaxOutputTokenCount = 5 }, Ct);

        using var client = fixture.Services.CreateClient();
        using var reference = await client.SendStreamingAsync(SseEvents.StreamRequest(new
        {
            messages = new[] { new { role = "system", content = "be brief" }, new { role = "user", content = "whole answer" } },
            max_tokens = 5,
        }), Ct);
        Assert.Equal((await reference.ReadAllEventsAsync(Ct)).Text(), Assert.Single(completion.Content).Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(5, completion.Usage.OutputTokenCount);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.StartsWith("chatcmpl-", completion.Id);
    }

    [Fact]
    public async Task TheOfficialClientListsTheRoutedModels()
    {
        var models = await fixture.OpenAi.GetOpenAIModelClient().GetModelsAsync(Ct);

        Assert.Equal(["synthetic", "synthetic-fail", "synthetic-reasoning", "synthetic-stall"], models.Value.Select(m => m.Id).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AnUnknownModelIsA404InOpenAisErrorShape()
    {
        var chat = fixture.OpenAi.GetChatClient("gpt-nonexistent");

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("x")], cancellationToken: Ct));

        Assert.Equal(404, error.Status);
        var body = JsonDocument.Parse(error.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error");
        Assert.Equal("model_not_found", body.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", body.GetProperty("type").GetString());
        Assert.Contains("gpt-nonexistent", body.GetProperty("message").GetString());
    }

    public static TheoryData<string, int, string> BadBodies => new()
    {
        { "{\"model\":", 400, "invalid_json" },
        { "{\"model\":\"synthetic\"}", 400, "invalid_request" },
        { "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":42}]}", 400, "invalid_request" },
        { "{\"model\":\"synthetic\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "invalid_request" },
        { "{\"model\":\"synthetic\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "invalid_request" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task BadRequestsGetOpenAiErrorObjects(string body, int status, string code)
    {
        using var client = fixture.Services.CreateClient();
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        using var response = await client.PostAsync("/v1/chat/completions", content, Ct);

        Assert.Equal(status, (int)response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task ContentThatIsNotUtf8IsABadRequestNotAServerError()
    {
        using var client = fixture.Services.CreateClient();
        byte[] body = [.. "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\""u8, 0xFF, .. "\"}]}"u8];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");

        using var response = await client.PostAsync("/v1/chat/completions", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("invalid_request", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ContentPartsAreAcceptedAsText()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "synthetic",
            max_tokens = 3,
            messages = new[] { new { role = "user", content = new object[] { new { type = "text", text = "parts" } } } },
        }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(await ReferenceTextAsync("parts", 3), message.GetProperty("content").GetString());
    }

    [Fact]
    public async Task TheStreamIsChunksThenUsageThenDone()
    {
        var lines = await RawStreamAsync(new { model = "synthetic", stream = true, stream_options = new { include_usage = true }, max_tokens = 4, messages = new[] { new { role = "user", content = "raw" } } });

        Assert.Equal("[DONE]", lines[^1]);
        var chunks = lines[..^1].Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("length", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(4, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Select(d => d.TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal(await ReferenceTextAsync("raw", 4), text);
    }

    [Fact]
    public async Task AFailingModelStreamsAnErrorObjectThenDoneAndAWholeRequestGets502()
    {
        var lines = await RawStreamAsync(new { model = "synthetic-fail", stream = true, max_tokens = 10, messages = new[] { new { role = "user", content = "fail" } } });

        Assert.Equal("[DONE]", lines[^1]);
        var error = JsonDocument.Parse(lines[^2]).RootElement.GetProperty("error");
        Assert.Equal("provider_error", error.GetProperty("code").GetString());

        using var client = fixture.Services.CreateClient();
        using var whole = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "synthetic-fail", max_tokens = 10, messages = new[] { new { role = "user", content = "fail" } } }, Ct);
        Assert.Equal(HttpStatusCode.BadGateway, whole.StatusCode);
        Assert.Equal("provider_error", (await whole.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task AClientThatDisconnectsCancelsItsCompletion()
    {
        using var client = fixture.Services.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "synthetic", stream = true, max_tokens = 5000, messages = new[] { new { role = "user", content = "leave" } } }),
        };
        var response = await client.SendStreamingAsync(request, Ct);
        string id;
        using (var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct)))
        {
            var first = await reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct);
            id = JsonDocument.Parse(first!["data: ".Length..]).RootElement.GetProperty("id").GetString()!["chatcmpl-".Length..];
        }

        response.Dispose();
        var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal("cancelled", TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task AStreamWhoseTokenStreamVanishesEndsWithAnErrorChunkThenDone()
    {
        using var client = fixture.Services.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "synthetic", stream = true, max_tokens = 5000, messages = new[] { new { role = "user", content = "vanish" } } }),
        };
        using var response = await client.SendStreamingAsync(request, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var lines = new List<string>();
        while (!lines.Any(l => l.Contains("\"content\":\"", StringComparison.Ordinal) && !l.Contains("\"content\":\"\"", StringComparison.Ordinal)))
        {
            lines.Add(await reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct) ?? throw new InvalidOperationException("The stream closed before a token."));
        }

        var id = JsonDocument.Parse(lines[0]["data: ".Length..]).RootElement.GetProperty("id").GetString()!["chatcmpl-".Length..];
        Assert.True(await fixture.Redis.Database.KeyDeleteAsync(RedisKeys.Tokens(id)));
        var rest = (await reader.ReadToEndAsync(Ct).WaitAsync(Bound, Ct)).Split('\n')
            .Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..]).ToList();

        Assert.Equal("[DONE]", rest[^1]);
        var error = JsonDocument.Parse(rest[^2]).RootElement.GetProperty("error");
        Assert.Equal("stream_lost", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task AWholeCompletionWhoseTokenStreamVanishesIsA502InOpenAisErrorShape()
    {
        const string prompt = "vanish whole";
        var queued = QueuedStreamIdAsync(prompt);
        using var client = fixture.Services.CreateClient();
        var sent = client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "synthetic", max_tokens = 5000, messages = new[] { new { role = "user", content = prompt } } }, Ct);
        var id = await queued.WaitAsync(Bound, Ct);
        await TokenStreams.WaitForAsync(fixture.Redis.Connection, id, e => e.Any(x => TokenStreams.EventOf(x) == EventNames.Token), Bound, Ct);

        Assert.True(await fixture.Redis.Database.KeyDeleteAsync(RedisKeys.Tokens(id)));
        using var response = await sent.WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("stream_lost", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }

    /// <summary>The stream id of the request whose prompt is <paramref name="prompt"/>, once it is queued (woken by keyspace notifications).</summary>
    private async Task<string> QueuedStreamIdAsync(string prompt)
    {
        var changed = new SemaphoreSlim(0);
        var channel = RedisChannel.Literal($"__keyspace@0__:{RedisKeys.Requests}");
        Action<RedisChannel, RedisValue> handler = (_, _) => changed.Release();
        var subscriber = fixture.Redis.Connection.GetSubscriber();
        await subscriber.SubscribeAsync(channel, handler);
        try
        {
            while (true)
            {
                var id = (await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Requests))
                    .Where(e => e[StreamFields.RequestBody].ToString().Contains(prompt, StringComparison.Ordinal))
                    .Select(e => (string?)e[StreamFields.RequestId]).FirstOrDefault();
                if (id is not null)
                {
                    return id;
                }

                if (!await changed.WaitAsync(Bound, Ct))
                {
                    throw new TimeoutException($"No request with the prompt '{prompt}' was queued within {Bound}.");
                }
            }
        }
        finally
        {
            await subscriber.UnsubscribeAsync(channel, handler);
        }
    }

    /// <summary>The data lines of a streamed completion, in order.</summary>
    private async Task<List<string>> RawStreamAsync(object body)
    {
        using var client = fixture.Services.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        using var response = await client.SendStreamingAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        return text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..]).ToList();
    }
}
