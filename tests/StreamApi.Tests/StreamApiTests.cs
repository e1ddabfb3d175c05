using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The API alone (no worker) against a real redis-server: what it puts on the queue, how it tails a token
/// stream it is woken for, and how it answers bad input. The tests play the worker's part with raw Redis
/// commands, so each assertion is about the API only.
/// </summary>
public sealed class StreamApiTests(StreamApiTests.Fixture fixture) : IClassFixture<StreamApiTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Streaming:HeartbeatInterval"] = "00:00:00.300",
                ["Streaming:MaxRequestBodyBytes"] = "4096",
            }, workers: 0, gateway: false);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task PostEnqueuesTheNormalisedRequestAndAnswersWithAnEventStream()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "queue me", model = "synthetic", max_tokens = 9 }), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.CacheControl?.NoCache);
        Assert.Equal("no", Assert.Single(response.Headers.GetValues("X-Accel-Buffering")));
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];

        var queued = await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Requests);
        var entry = Assert.Single(queued, e => e[StreamFields.RequestId] == id);
        var request = InferenceRequest.FromUtf8Json(((ReadOnlyMemory<byte>)entry[StreamFields.RequestBody]).Span)!;
        Assert.Equal("synthetic", request.Model);
        Assert.Equal(9, request.MaxTokens);
        Assert.Equal(new ChatTurn("user", "queue me"), Assert.Single(request.Messages));
        Assert.StartsWith("00-", entry[StreamFields.TraceParent].ToString());

        var ttl = await fixture.Redis.Database.KeyTimeToLiveAsync(RedisKeys.Tokens(id));
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(13));

        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        Assert.Equal("start", events.Current.EventType);
        Assert.Equal(id, events.Current.Payload.GetProperty("id").GetString());
    }

    [Fact]
    public async Task TheTailerIsWokenForEachAppendAndClosesAfterEnd()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "tail me" }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));

        // Play the worker: append, then publish the wake-up.
        for (var i = 0; i < 3; i++)
        {
            await AppendAsync(id, EventNames.Token, Envelopes.Token($"t{i}", i));
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
            Assert.Equal("token", events.Current.EventType);
            Assert.Equal($"t{i}", events.Current.Payload.GetProperty("text").GetString());
            Assert.NotNull(events.Current.Id);
        }

        await AppendAsync(id, EventNames.End, Envelopes.End(EndReasons.Stop, 3));
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        Assert.Equal("end", events.Current.EventType);
        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task AnIdleStreamCarriesHeartbeatComments()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "idle" }), Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));

        // The start event, then nothing from the (absent) worker: the heartbeat must still come.
        var lines = new List<string>();
        while (await reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct) is { } line)
        {
            lines.Add(line);
            if (line == ": ping")
            {
                break;
            }
        }

        Assert.Contains("event: start", lines);
        Assert.Equal(": ping", lines[^1]);
    }

    [Fact]
    public async Task AttachReplaysFromTheStartOrAfterLastEventId()
    {
        using var client = fixture.Services.CreateApiClient();
        using var post = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "replay" }), Ct);
        var location = post.Headers.Location!.OriginalString;
        var id = location["/infer/stream/".Length..];
        var ids = new List<string> { (await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Tokens(id)))[0].Id! };
        for (var i = 0; i < 4; i++)
        {
            ids.Add(await AppendAsync(id, EventNames.Token, Envelopes.Token($"w{i}", i)));
        }

        ids.Add(await AppendAsync(id, EventNames.End, Envelopes.End(EndReasons.Stop, 4)));

        using var all = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, location), Ct);
        var replay = await all.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(ids, replay.Select(e => e.Id));
        Assert.Equal("w0w1w2w3", replay.Text());

        using var resume = new HttpRequestMessage(HttpMethod.Get, location);
        resume.Headers.Add("Last-Event-ID", ids[2]);
        using var rest = await client.SendStreamingAsync(resume, Ct);
        var after = await rest.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(ids[3..], after.Select(e => e.Id));
        Assert.Equal("w2w3", after.Text());
    }

    [Theory]
    [InlineData("99999999999999999999-0")]
    [InlineData("1-")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("1-2-3")]
    [InlineData("9999999999999-0")]
    [InlineData("18446744073709551615-18446744073709551615")]
    public async Task AnInvalidLastEventIdIsABadRequest(string lastEventId)
    {
        using var client = fixture.Services.CreateApiClient();
        using var post = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "ids" }), Ct);
        using var request = new HttpRequestMessage(HttpMethod.Get, post.Headers.Location);
        request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);

        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task UnknownStreamsAreNotFoundProblems()
    {
        using var client = fixture.Services.CreateApiClient();

        foreach (var request in new[]
        {
            new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{Guid.NewGuid():N}"),
            new HttpRequestMessage(HttpMethod.Get, "/infer/stream/not-an-id"),
            new HttpRequestMessage(HttpMethod.Delete, $"/infer/stream/{Guid.NewGuid():N}"),
        })
        {
            using var response = await client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal("Unknown stream", problem.GetProperty("title").GetString());
        }
    }

    [Fact]
    public async Task DeleteMarksTheRequestCancelledAndTellsTheWorkers()
    {
        using var client = fixture.Services.CreateApiClient();
        using var post = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "cancel me" }), Ct);
        var location = post.Headers.Location!.OriginalString;
        var id = location["/infer/stream/".Length..];
        var published = new TaskCompletionSource<string>();
        var subscriber = fixture.Redis.Connection.GetSubscriber();
        await subscriber.SubscribeAsync(RedisKeys.Cancellations, (_, message) => published.TrySetResult(message!));

        using var response = await client.DeleteAsync(location, Ct);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(id, await published.Task.WaitAsync(Bound, Ct));
        Assert.True(await fixture.Redis.Database.KeyExistsAsync(RedisKeys.Cancelled(id)));
        await subscriber.UnsubscribeAllAsync();
    }

    public static TheoryData<string, string?, int, string> BadRequests => new()
    {
        { "{\"prompt\":", "application/json", 400, "Malformed JSON" },
        { "[1,2]", "application/json", 400, "Malformed JSON" },
        { "null", "application/json", 400, "Invalid request" },
        { "{\"max_tokens\":\"ten\",\"prompt\":\"x\"}", "application/json", 400, "Malformed JSON" },
        { "{\"model\":\"synthetic\"}", "application/json", 400, "Invalid request" },
        { "{\"prompt\":\"x\",\"max_tokens\":40000}", "application/json", 400, "Invalid request" },
        { "{\"prompt\":\"x\",\"model\":\"nope\"}", "application/json", 404, "Unknown model" },
        { "{\"prompt\":\"x\"}", "text/plain", 415, "Unsupported media type" },
        { "{\"prompt\":\"x\"}", null, 415, "Unsupported media type" },
        { "{\"prompt\":\"" + new string('x', 5000) + "\"}", "application/json", 413, "Request body too large" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadInputGetsProblemDetails(string body, string? contentType, int status, string title)
    {
        using var client = fixture.Services.CreateApiClient();
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = contentType is null ? null : new MediaTypeHeaderValue(contentType);

        using var response = await client.PostAsync("/infer/stream", content, Ct);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(title, problem.GetProperty("title").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task ABodyOverTheLimitWithoutContentLengthIsStillRejected()
    {
        using var client = fixture.Services.CreateApiClient();
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("{\"prompt\":\"" + new string('y', 8000) + "\"}")));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/infer/stream") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task HundredsOfGeneratedMalformedBodiesNeverGetA5xxAndStreamingStillWorks()
    {
        using var client = fixture.Services.CreateApiClient();
        var random = new Random(20261125);
        string[] fragments = ["{", "}", "[", "]", "\"prompt\"", ":", ",", "\"x\"", "1e999", "-1", "null", "true", "\"max_tokens\"",
            "\"messages\"", "\"role\"", "\"content\"", "\"model\"", "\\u0000", "\"\\uD800\"", "99999999999999999999", " ", "\"temperature\""];
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < 300; i++)
        {
            var body = new StringBuilder();
            var parts = random.Next(1, 14);
            for (var p = 0; p < parts; p++)
            {
                body.Append(fragments[random.Next(fragments.Length)]);
            }

            using var content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync("/infer/stream", content, Ct);
            Assert.True((int)response.StatusCode < 500, $"{(int)response.StatusCode} for body: {body}");
            statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
        }

        Assert.True(statuses.GetValueOrDefault(400) > 200, string.Join(", ", statuses));

        using var ok = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "still alive" }), Ct);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    private Task<string> AppendAsync(string id, string eventName, byte[] envelope) =>
        TokenStreams.AppendAsync(fixture.Redis.Database, id, eventName, envelope);
}
