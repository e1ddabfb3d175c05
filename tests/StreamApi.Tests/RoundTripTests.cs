using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// What the API sends Redis for one stream, seen by <c>MONITOR</c> on a real redis-server (the test plays the worker):
/// the stream is created, attached and queued in one command, with no subscription of its own; each write wakes the
/// replica with one message, each woken read is one command, and a stream that ended is not detached. These are the per-request round trips that bound the system's throughput.
/// </summary>
public sealed class RoundTripTests(RoundTripTests.Fixture fixture) : IClassFixture<RoundTripTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        // Without the per-client stream limit, whose slot is one more script (on its own key, another shard's).
        public override async ValueTask InitializeAsync() =>
            await StartAsync(new Dictionary<string, string?> { ["Streaming:MaxConcurrentStreamsPerClient"] = "0" }, workers: 0, gateway: false);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private IDatabase Db => fixture.Redis.Database;

    [Fact]
    public async Task AStreamIsCreatedAttachedAndQueuedInOneCommand()
    {
        using var client = fixture.Services.CreateApiClient();
        // A script's first call on a server also loads it: count a later one.
        using (var first = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "warm up" }), Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, first.StatusCode);
        }

        await using var monitor = await RedisMonitor.StartAsync(fixture.Redis, Ct);
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "one trip" }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        Assert.Equal("start", events.Current.EventType);

        // Everything the start wrote is there: the start entry, the client's lease, the queue entry.
        Assert.Equal(EventNames.Start, (string?)Assert.Single(await Db.StreamRangeAsync(RedisKeys.Tokens(id)))[StreamFields.Event]);
        Assert.Equal(1, await AttachLeaseProbe.LiveLeasesAsync(Db, id));
        Assert.Single(await Db.StreamRangeAsync(RedisKeys.Requests), e => e[StreamFields.RequestId] == id);

        // Before its first read, the request cost one script: no subscription of its own (the replica has one for all).
        var sent = monitor.Sent().Where(c => c.Arguments.Any(a => a.Contains(id, StringComparison.Ordinal))).ToList();
        var firstRead = sent.FindIndex(c => c.Name == "XREAD");
        Assert.True(firstRead >= 0, string.Join(", ", sent.Select(c => c.Name)));
        Assert.Single(sent[..firstRead]);
        Assert.StartsWith("EVAL", sent[0].Name, StringComparison.Ordinal);
        Assert.DoesNotContain(monitor.Sent(), c => c.Name is "XLEN" or "EXPIRE" or "XADD" or "ZADD");
        // Another connection may subscribe meanwhile (a multiplexer connecting subscribes to its own channel): only one
        // for this stream would be the request's.
        Assert.DoesNotContain(sent, c => c.Name.EndsWith("SUBSCRIBE", StringComparison.Ordinal));
    }

    [Fact]
    public async Task EachWakeUpCostsOneReadAndAStreamThatEndedIsNotDetached()
    {
        const int tokens = 12;
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "count my reads" }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        var lease = Assert.Single(await Db.SortedSetRangeByRankAsync(RedisKeys.Clients(id)));

        await using var monitor = await RedisMonitor.StartAsync(fixture.Redis, Ct);
        // Play the worker, one token per wake-up, each delivered before the next is appended.
        for (var i = 0; i < tokens; i++)
        {
            await AppendAsync(id, EventNames.Token, Envelopes.Token($"t{i}", i));
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
            Assert.Equal($"t{i}", events.Current.Payload.GetProperty("text").GetString());
        }

        await AppendAsync(id, EventNames.End, Envelopes.End(EndReasons.Stop, tokens));
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        Assert.Equal("end", events.Current.EventType);
        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        // Each write woke this replica with one message on its own channel, naming the stream.
        var replica = ((string)lease!).Split(':')[0];
        var wakes = monitor.All().Where(c => c.FromScript && c.Name == "PUBLISH").ToList();
        Assert.Equal(tokens + 1, wakes.Count);
        Assert.All(wakes, c => Assert.Equal([RedisKeys.ReplicaWake(replica).ToString(), id], c.Arguments));
        Assert.DoesNotContain(monitor.Sent(), c => c.Name.EndsWith("SUBSCRIBE", StringComparison.Ordinal));

        // A read that found entries is not followed by an empty one: one read per wake-up (a wake-up that lands while
        // a read is in flight may cost one more), where reading until empty took two.
        var reads = monitor.Sent().Count(c => c.Name == "XREAD" && c.Arguments.Contains(RedisKeys.Tokens(id).ToString()));
        Assert.InRange(reads, tokens + 1, tokens + 3);
        // No detach once the end was read: the lease stays until the set expires with the stream; no grace begins.
        Assert.DoesNotContain(monitor.Sent(), c => c.Arguments.Contains(RedisKeys.Left(id).ToString()));
        Assert.Equal([lease], await Db.SortedSetRangeByRankAsync(RedisKeys.Clients(id)));
        Assert.False(await Db.KeyExistsAsync(RedisKeys.Left(id)));
    }

    private Task<string> AppendAsync(string id, string eventName, byte[] envelope) => TokenStreams.AppendAsync(Db, id, eventName, envelope);
}
