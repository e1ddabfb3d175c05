using System.Net;
using System.Text;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The limits of the contract, made small so they are reached quickly: a 2,500-byte stream cap, 256-byte token
/// events, a 1 s maximum duration, a 0.5 s first-token timeout, a 1 s resume window and 100-entry streams.
/// Every request goes through the real gateway.
/// </summary>
public sealed class StreamLimitsTests(StreamLimitsTests.Fixture fixture) : IClassFixture<StreamLimitsTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Inference:Models:chunky:Provider"] = ChunkyChatClient.Name,
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
                ["Streaming:MaxStreamBytes"] = "2500",
                ["Streaming:MaxTokenEventBytes"] = "256",
                ["Streaming:MaxDuration"] = "00:00:01",
                ["Streaming:FirstTokenTimeout"] = "00:00:00.500",
                ["Streaming:ResumeWindow"] = "00:00:01",
                ["Streaming:MaxStreamEntries"] = "100",
            }, workerServices: ChunkyChatClient.Register);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private async Task<List<ServerEvent>> StreamAsync(object body)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(body), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
    }

    [Fact]
    public async Task ProviderChunksLargerThanTheEventCapAreSplitInOrderWithNothingLost()
    {
        var events = await StreamAsync(new { prompt = "chunks:3x600", model = "chunky" });

        var tokens = events.Where(e => e.EventType == "token").ToList();
        Assert.Equal(ChunkyChatClient.Chunk(0, 600) + ChunkyChatClient.Chunk(1, 600) + ChunkyChatClient.Chunk(2, 600), events.Text());
        Assert.True(tokens.Count >= 9, $"{tokens.Count} token events for 3 chunks of 600 bytes");
        Assert.All(tokens, t => Assert.InRange(Encoding.UTF8.GetByteCount(t.Payload.GetProperty("text").GetString()!), 1, 256));
        Assert.Equal(Enumerable.Range(0, tokens.Count), tokens.Select(t => t.Payload.GetProperty("index").GetInt32()));
        Assert.Equal("stop", events.EndReason());
    }

    [Fact]
    public async Task AStreamThatReachesTheByteCapEndsWithMaxBytes()
    {
        var events = await StreamAsync(new { prompt = "chunks:10x1000", model = "chunky" });

        Assert.Equal("max_bytes", events.EndReason());
        Assert.InRange(Encoding.UTF8.GetByteCount(events.Text()), 2000, 2500);
        Assert.Equal(["start", "token"], events.Select(e => e.EventType).Distinct().Take(2));
        Assert.DoesNotContain(events, e => e.EventType == "error");
    }

    [Fact]
    public async Task AStreamLongerThanTheMaxDurationEndsWithTimeout()
    {
        var events = await StreamAsync(new { prompt = "forever", max_tokens = 32_768 });

        Assert.Equal("timeout", events.EndReason());
        Assert.InRange(events.Count(e => e.EventType == "token"), 1, 32_767);
    }

    [Fact]
    public async Task AProviderSilentPastTheFirstTokenTimeoutGivesProviderTimeoutThenEnd()
    {
        var events = await StreamAsync(new { prompt = "stall", model = "synthetic-stall" });

        Assert.Equal(["start", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal("provider_timeout", events[1].Payload.GetProperty("code").GetString());
        Assert.Equal("error", events.EndReason());
    }

    [Fact]
    public async Task TokenStreamsAreCappedExpireAfterTheResumeWindowAndLeaveNothingBehind()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "chunks:400x4", model = "chunky", max_tokens = 32_768 }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        var db = fixture.Redis.Database;
        var expired = await ExpiryWatchAsync(RedisKeys.Tokens(id));

        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("max_bytes", events.EndReason());
        Assert.Equal("end", events[^1].EventType);
        // MAXLEN ~ 100 trims whole nodes of 100 entries: the stream stays near the cap, not near 350.
        Assert.InRange(await db.StreamLengthAsync(RedisKeys.Tokens(id)), 1, 200);
        await TokenStreams.WaitUntilDequeuedAsync(fixture.Redis.Connection, id, Ct);
        Assert.InRange((await db.KeyTimeToLiveAsync(RedisKeys.Tokens(id)))!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(1));

        await expired.WaitAsync(Bound, Ct);

        foreach (var key in new[] { RedisKeys.Tokens(id), RedisKeys.Clients(id), RedisKeys.Cancelled(id) })
        {
            Assert.False(await db.KeyExistsAsync(key), $"{key} outlived the resume window");
        }

        using var late = await client.GetAsync(response.Headers.Location, Ct);
        Assert.Equal(HttpStatusCode.NotFound, late.StatusCode);
        Assert.Equal("application/problem+json", late.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task FinishedRequestsLeaveNoQueueEntriesBehind()
    {
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            using var client = fixture.Services.CreateClient();
            using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = $"short {i}", max_tokens = 2 }), Ct);
            ids.Add(response.Headers.Location!.OriginalString["/infer/stream/".Length..]);
            await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        }

        foreach (var id in ids)
        {
            await TokenStreams.WaitUntilDequeuedAsync(fixture.Redis.Connection, id, Ct);
        }

        Assert.Equal(0, await fixture.Redis.Database.StreamLengthAsync(RedisKeys.Requests));
        var pending = await fixture.Redis.Database.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.Equal(0, pending.PendingMessageCount);
    }

    /// <summary>Completes when Redis reports the key expired (keyspace notifications, no polling).</summary>
    private async Task<Task> ExpiryWatchAsync(RedisKey key)
    {
        var expired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await fixture.Redis.Connection.GetSubscriber().SubscribeAsync(RedisChannel.Literal($"__keyspace@0__:{key}"), (_, message) =>
        {
            if (message == "expired")
            {
                expired.TrySetResult();
            }
        });
        return expired.Task;
    }
}
