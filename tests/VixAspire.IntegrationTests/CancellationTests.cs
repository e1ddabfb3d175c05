using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// DELETE, dropped connections and the disconnect grace (0.5 s here), with the synthetic model at 20 ms a
/// token so every generation is still running when the test acts on it; and the per-client stream limit (2).
/// </summary>
public sealed class CancellationTests(CancellationTests.Fixture fixture) : IClassFixture<CancellationTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
                ["Streaming:DisconnectGrace"] = "00:00:00.500",
                ["Streaming:MaxConcurrentStreamsPerClient"] = "2",
            });
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static string IdOf(HttpResponseMessage response) => response.Headers.Location!.OriginalString["/infer/stream/".Length..];

    /// <summary>Reads events up to and including the first token.</summary>
    private static async Task<List<ServerEvent>> ReadToFirstTokenAsync(IAsyncEnumerator<ServerEvent> reader)
    {
        var events = new List<ServerEvent>();
        while (await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            events.Add(reader.Current);
            if (reader.Current.EventType == "token")
            {
                return events;
            }
        }

        throw new InvalidOperationException("The stream ended before its first token.");
    }

    private static async Task ReadRestAsync(IAsyncEnumerator<ServerEvent> reader, List<ServerEvent> events)
    {
        while (await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            events.Add(reader.Current);
        }
    }

    [Fact]
    public async Task DeleteEndsTheStreamAtOnceForEveryAttachedClient()
    {
        using var client = fixture.Services.CreateClient();
        using var owner = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "delete me", max_tokens = 5000 }), Ct);
        await using var ownerReader = owner.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var ownerEvents = await ReadToFirstTokenAsync(ownerReader);
        using var follower = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, owner.Headers.Location), Ct);
        await using var followerReader = follower.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var followerEvents = await ReadToFirstTokenAsync(followerReader);

        var clock = Stopwatch.StartNew();
        using var deleted = await client.DeleteAsync(owner.Headers.Location, Ct);
        await ReadRestAsync(ownerReader, ownerEvents);
        var delay = clock.Elapsed;
        await ReadRestAsync(followerReader, followerEvents);

        Assert.Equal(HttpStatusCode.Accepted, deleted.StatusCode);
        Assert.Equal("cancelled", ownerEvents.EndReason());
        Assert.Equal("cancelled", followerEvents.EndReason());
        Assert.Equal(ownerEvents.Text(), followerEvents.Text());
        // The end entry is written by the worker after its generation loop has stopped: nothing follows it.
        var stream = await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Tokens(IdOf(owner)));
        Assert.Equal(EventNames.End, TokenStreams.EventOf(stream[^1]));
        Assert.Equal(ownerEvents.Count(e => e.EventType == "token"), stream.Count(e => TokenStreams.EventOf(e) == EventNames.Token));
        TestContext.Current.TestOutputHelper?.WriteLine($"DELETE to end event through the gateway: {delay.TotalMilliseconds:0.0} ms");
        Assert.True(delay < TimeSpan.FromSeconds(5), $"cancel took {delay}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ADroppedConnectionCancelsTheGenerationAfterTheGrace(bool throughGateway)
    {
        using var client = throughGateway ? fixture.Services.CreateClient() : fixture.Services.CreateApiClient();
        var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "drop me", max_tokens = 5000 }), Ct);
        var id = IdOf(response);
        await using (var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct))
        {
            await ReadToFirstTokenAsync(reader);
        }

        var dropped = Stopwatch.StartNew();
        response.Dispose();
        var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, id, Ct);
        var delay = dropped.Elapsed;

        Assert.Equal("cancelled", TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString());
        Assert.InRange(entries.Count(e => TokenStreams.EventOf(e) == EventNames.Token), 1, 4999);
        TestContext.Current.TestOutputHelper?.WriteLine($"disconnect ({(throughGateway ? "gateway" : "direct")}) to end, grace 500 ms: {delay.TotalMilliseconds:0.0} ms");
        Assert.True(delay >= TimeSpan.FromMilliseconds(450), $"cancelled after {delay}, before the grace");
        // The generation held the client's slot until its end, though its client was gone; the worker frees it then.
        await Eventually.UntilAsync(async () => await fixture.Redis.Database.SortedSetScoreAsync(RedisKeys.ClientStreams("ip:127.0.0.1"), id) is null,
            Bound, "the ended generation's slot freed", Ct);
    }

    [Fact]
    public async Task ACancelMarkedInRedisStopsTheGenerationEvenWithoutItsMessage()
    {
        // As if the worker's subscription was reconnecting when the cancel was published: only the flag is there.
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "missed message", max_tokens = 5000 }), Ct);
        await using var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var events = await ReadToFirstTokenAsync(reader);

        await fixture.Redis.Database.StringSetAsync(RedisKeys.Cancelled(IdOf(response)), 1, TimeSpan.FromMinutes(1));
        await ReadRestAsync(reader, events);

        Assert.Equal("cancelled", events.EndReason());
        Assert.InRange(events.Count(e => e.EventType == "token"), 1, 4999);
    }

    [Fact]
    public async Task SlotsHeldByAReplicaThatDiedExpireWithTheirStreamsDeadline()
    {
        // Two slots of streams whose deadline has passed, never released (their replica died).
        var slots = RedisKeys.ClientStreams("ip:127.0.0.1");
        await fixture.Redis.Database.SortedSetAddAsync(slots, [new("dead-1", 1), new("dead-2", 2)]);

        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "after the crash", max_tokens = 2 }), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("length", (await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
        Assert.Null(await fixture.Redis.Database.SortedSetScoreAsync(slots, "dead-1"));
    }

    [Fact]
    public async Task ReattachingWithinTheGraceKeepsTheGenerationAlive()
    {
        using var client = fixture.Services.CreateClient();
        var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "come back", max_tokens = 100 }), Ct);
        var location = response.Headers.Location!;
        List<ServerEvent> before;
        await using (var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct))
        {
            before = await ReadToFirstTokenAsync(reader);
        }

        response.Dispose();
        using var resume = new HttpRequestMessage(HttpMethod.Get, location);
        resume.Headers.Add("Last-Event-ID", before[^1].Id);
        using var again = await client.SendStreamingAsync(resume, Ct);
        var after = await again.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal("length", after.EndReason());
        Assert.Equal(100, before.Concat(after).Count(e => e.EventType == "token"));
    }

    [Fact]
    public async Task OneClientLeavingDoesNotCancelAGenerationAnotherClientFollows()
    {
        using var client = fixture.Services.CreateClient();
        var owner = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "stay", max_tokens = 60 }), Ct);
        using var follower = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, owner.Headers.Location), Ct);
        await using var followerReader = follower.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var events = await ReadToFirstTokenAsync(followerReader);

        owner.Dispose();
        await ReadRestAsync(followerReader, events);

        Assert.Equal("length", events.EndReason());
        Assert.Equal(60, events.Count(e => e.EventType == "token"));
    }

    [Fact]
    public async Task TooManyConcurrentStreamsFromOneClientGet429WithRetryAfter()
    {
        using var client = fixture.Services.CreateClient();
        using var first = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "one", max_tokens = 5000 }), Ct);
        using var second = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "two", max_tokens = 5000 }), Ct);

        using var third = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "three", max_tokens = 5 }), Ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("application/problem+json", third.Content.Headers.ContentType?.MediaType);
        Assert.Equal(TimeSpan.FromSeconds(1), third.Headers.RetryAfter?.Delta);
        var problem = await third.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Contains("MaxConcurrentStreamsPerClient", problem.GetProperty("detail").GetString());

        // When one stream ends, its slot is free again.
        using var cancel = await client.DeleteAsync(first.Headers.Location, Ct);
        Assert.Equal("cancelled", (await first.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
        using var fourth = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "four", max_tokens = 3 }), Ct);
        Assert.Equal(HttpStatusCode.OK, fourth.StatusCode);
        Assert.Equal("length", (await fourth.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());

        using var cancelSecond = await client.DeleteAsync(second.Headers.Location, Ct);
        Assert.Equal("cancelled", (await second.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).EndReason());
    }
}
