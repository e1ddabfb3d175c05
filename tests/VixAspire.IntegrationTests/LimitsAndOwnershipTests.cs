using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The per-client stream limit (3) counts generations until they end and attachments while they last; with API keys
/// a stream belongs to the key that created it. The synthetic model runs at 50 ms a token and the disconnect grace is
/// 30 s, so a generation whose client left keeps running. Requests go to the API directly with <c>X-Vix-Client</c>,
/// as the gateway sends it when keys are configured; each test uses keys of its own.
/// </summary>
public sealed class LimitsAndOwnershipTests(LimitsAndOwnershipTests.Fixture fixture) : IClassFixture<LimitsAndOwnershipTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.050",
                ["Streaming:DisconnectGrace"] = "00:00:30",
                ["Streaming:MaxConcurrentStreamsPerClient"] = "3",
            });
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static string NewKey() => $"key-{Guid.NewGuid():N}";

    private static HttpRequestMessage As(string key, HttpRequestMessage request)
    {
        request.Headers.Add("X-Vix-Client", key);
        return request;
    }

    private static HttpRequestMessage Post(string key, int maxTokens) =>
        As(key, SseEvents.StreamRequest(new { prompt = "count me", max_tokens = maxTokens }));

    private static HttpRequestMessage Get(string key, string id) => As(key, new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}"));

    private static string IdOf(HttpResponseMessage response) => response.Headers.Location!.OriginalString["/infer/stream/".Length..];

    private Task<long> SlotsTakenAsync(string key) => fixture.Redis.Database.SortedSetLengthAsync(RedisKeys.ClientStreams($"key:{key}"));

    /// <summary>POSTs, reads the <c>start</c> event, and drops the connection; returns the stream id.</summary>
    private static async Task<string> StartAndDropAsync(HttpClient client, string key)
    {
        using var response = await client.SendStreamingAsync(Post(key, maxTokens: 40), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        Assert.Equal("start", events.Current.EventType);
        return IdOf(response);
    }

    [Fact]
    public async Task GenerationsWhoseClientLeftCountUntilTheyEnd()
    {
        using var client = fixture.Services.CreateApiClient();
        var key = NewKey();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await StartAndDropAsync(client, key));
        }

        using var refused = await client.SendStreamingAsync(Post(key, maxTokens: 1), Ct);
        var runningWhenRefused = 0;
        foreach (var id in ids)
        {
            var last = await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Tokens(id), "-", "+", count: 1, Order.Descending);
            runningWhenRefused += TokenStreams.EventOf(last[0]) == EventNames.End ? 0 : 1;
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(3, runningWhenRefused);

        // The generations run to their length although nobody follows them; then their slots are free again.
        foreach (var id in ids)
        {
            var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, id, Ct);
            Assert.Equal("length", TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString());
        }

        await Eventually.UntilAsync(async () => await SlotsTakenAsync(key) == 0, Bound, "the ended generations' slots freed", Ct);
        using var accepted = await client.SendStreamingAsync(Post(key, maxTokens: 2), Ct);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal("length", (await accepted.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
    }

    [Fact]
    public async Task AttachmentsCountWhileTheyLast()
    {
        using var client = fixture.Services.CreateApiClient();
        var key = NewKey();
        using var owner = await client.SendStreamingAsync(Post(key, maxTokens: 200), Ct);
        var id = IdOf(owner);
        using var firstAttach = await client.SendStreamingAsync(Get(key, id), Ct);
        var secondAttach = await client.SendStreamingAsync(Get(key, id), Ct);

        using var refusedPost = await client.SendStreamingAsync(Post(key, maxTokens: 1), Ct);
        using var refusedAttach = await client.SendStreamingAsync(Get(key, id), Ct);

        Assert.Equal(HttpStatusCode.OK, firstAttach.StatusCode);
        Assert.Equal(HttpStatusCode.OK, secondAttach.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refusedPost.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refusedAttach.StatusCode);
        Assert.Equal("application/problem+json", refusedAttach.Content.Headers.ContentType?.MediaType);
        Assert.Equal(TimeSpan.FromSeconds(1), refusedAttach.Headers.RetryAfter?.Delta);

        // A detach frees its slot.
        secondAttach.Dispose();
        await Eventually.UntilAsync(async () => await SlotsTakenAsync(key) == 2, Bound, "the detached client's slot freed", Ct);
        using var accepted = await client.SendStreamingAsync(Post(key, maxTokens: 1), Ct);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal("length", (await accepted.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());

        using var cancel = await client.SendAsync(As(key, new HttpRequestMessage(HttpMethod.Delete, $"/infer/stream/{id}")), Ct);
        Assert.Equal("cancelled", (await owner.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
    }

    [Fact]
    public async Task WebSocketRequestsCountUntilTheirGenerationsEndEvenAfterTheSocketCloses()
    {
        var key = NewKey();
        var address = new UriBuilder(fixture.Services.ApiAddress) { Scheme = "ws", Path = "/infer/ws" }.Uri;
        using (var first = await ConnectAsync(address, key))
        {
            for (var i = 0; i < 3; i++)
            {
                await SendAsync(first, new { type = "inference.request", request_id = $"r{i}", payload = new { prompt = "keep going", max_tokens = 100 } });
            }

            var starts = 0;
            while (starts < 3)
            {
                starts += Type(await ReceiveAsync(first)) == "inference.start" ? 1 : 0;
            }

            first.Abort();
        }

        using var second = await ConnectAsync(address, key);
        await SendAsync(second, new { type = "inference.request", request_id = "late", payload = new { prompt = "one too many", max_tokens = 1 } });
        var error = await ReceiveAsync(second);
        var end = await ReceiveAsync(second);

        Assert.Equal("inference.error", Type(error));
        Assert.Equal("too_many_streams", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.Equal("inference.end", Type(end));
    }

    [Fact]
    public async Task WithKeysAStreamIsReadAndCancelledOnlyWithTheKeyThatCreatedIt()
    {
        using var client = fixture.Services.CreateApiClient();
        var (alice, mallory) = (NewKey(), NewKey());
        using var owner = await client.SendStreamingAsync(Post(alice, maxTokens: 200), Ct);
        var id = IdOf(owner);

        using var othersRead = await client.SendStreamingAsync(Get(mallory, id), Ct);
        using var othersCancel = await client.SendAsync(As(mallory, new HttpRequestMessage(HttpMethod.Delete, $"/infer/stream/{id}")), Ct);
        using var unknown = await client.SendStreamingAsync(Get(mallory, Guid.NewGuid().ToString("N")), Ct);
        using var ownRead = await client.SendStreamingAsync(Get(alice, id), Ct);
        await using (var events = ownRead.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct))
        {
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
            Assert.Equal("start", events.Current.EventType);
        }

        // Another key's stream looks exactly like one that does not exist.
        Assert.Equal(HttpStatusCode.NotFound, othersRead.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, othersCancel.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ownRead.StatusCode);
        Assert.Equal(alice, await fixture.Redis.Database.StringGetAsync(RedisKeys.Owner(id)));

        using var ownCancel = await client.SendAsync(As(alice, new HttpRequestMessage(HttpMethod.Delete, $"/infer/stream/{id}")), Ct);
        Assert.Equal(HttpStatusCode.Accepted, ownCancel.StatusCode);
        Assert.Equal("cancelled", (await owner.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
    }

    private static async Task<ClientWebSocket> ConnectAsync(Uri address, string key)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("X-Vix-Client", key);
        await socket.ConnectAsync(address, Ct).WaitAsync(Bound, Ct);
        return socket;
    }

    private static async Task SendAsync(ClientWebSocket socket, object message) =>
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);

    private static Task<JsonElement> ReceiveAsync(ClientWebSocket socket) => socket.ReceiveJsonAsync(Bound, Ct);

    private static string? Type(JsonElement message) => message.GetProperty("type").GetString();
}
