using System.Diagnostics;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;
using VixAspire.StreamApi.Streaming.Scripts;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// Attach leases with two API replicas on one redis-server and no worker (nothing ends a stream by itself):
/// renewal at each heartbeat, release on leaving, the grace judged across replicas, and a lease that nobody
/// renews running out as when its replica died. Heartbeat 300 ms (lease 750 ms), grace 2 s.
/// </summary>
public sealed class AttachLeaseTests(AttachLeaseTests.Fixture fixture) : IClassFixture<AttachLeaseTests.Fixture>
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Streaming:HeartbeatInterval"] = "00:00:00.300",
        ["Streaming:DisconnectGrace"] = "00:00:02",
    };

    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    public sealed class Fixture : ServicesFixture, IAsyncDisposable
    {
        public RunningServices Other { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(Settings, workers: 0, gateway: false);
            Other = await RunningServices.StartAsync(Redis, Settings, workers: 0, gateway: false);
        }

        public new async ValueTask DisposeAsync()
        {
            await Other.DisposeAsync();
            await base.DisposeAsync();
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private IDatabase Db => fixture.Redis.Database;

    private static string IdOf(HttpResponseMessage response) => response.Headers.Location!.OriginalString["/infer/stream/".Length..];

    [Fact]
    public async Task AFollowedStreamHoldsOneLeaseThatItsReplicaRenewsAtEachHeartbeat()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "renew me" }), Ct);
        var id = IdOf(response);
        // The lease is taken once the response has begun, so it may follow the headers by a round trip.
        await Eventually.UntilAsync(async () => await Db.SortedSetLengthAsync(RedisKeys.Clients(id)) > 0, Bound, "the follower's lease taken", Ct);
        var member = Assert.Single(await Db.SortedSetRangeByRankAsync(RedisKeys.Clients(id)));
        var first = (await Db.SortedSetScoreAsync(RedisKeys.Clients(id), member))!.Value;

        // Three renewals: well past the 750 ms the first lease lasted.
        var renewals = 0;
        var last = first;
        await Eventually.UntilAsync(async () =>
        {
            var score = (await Db.SortedSetScoreAsync(RedisKeys.Clients(id), member))!.Value;
            renewals += score > last ? 1 : 0;
            last = score;
            return renewals >= 3;
        }, Bound, "the lease renewed three times", Ct);

        Assert.Equal(1, await AttachLeaseProbe.LiveLeasesAsync(Db, id));
        Assert.False(await AttachLeaseProbe.IsAbandonedAsync(Db, id, Grace));
        Assert.False(await Db.KeyExistsAsync(RedisKeys.Left(id)));
        Assert.InRange((await Db.KeyTimeToLiveAsync(RedisKeys.Clients(id)))!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(13));
    }

    [Fact]
    public async Task AClientThatLeavesEndsItsLeaseRecordsWhenAndItsStreamIsCancelledAfterTheGrace()
    {
        var id = await StartAndLeaveAsync(fixture.Services);

        Assert.Equal(0, await Db.SortedSetLengthAsync(RedisKeys.Clients(id)));
        var leftTtl = (await Db.KeyTimeToLiveAsync(RedisKeys.Left(id)))!.Value;
        var streamTtl = (await Db.KeyTimeToLiveAsync(RedisKeys.Tokens(id)))!.Value;
        Assert.InRange(leftTtl, streamTtl - TimeSpan.FromSeconds(5), streamTtl + TimeSpan.FromSeconds(1));
        await Eventually.UntilAsync(() => Db.KeyExistsAsync(RedisKeys.Cancelled(id)), Bound, "the abandoned stream cancelled", Ct);
        Assert.True(await AttachLeaseProbe.IsAbandonedAsync(Db, id, Grace));
    }

    [Fact]
    public async Task AClientReattachingOnAnotherReplicaWithinTheGraceKeepsTheGenerationAlive()
    {
        var id = await StartAndLeaveAsync(fixture.Services);
        using var other = fixture.Other.CreateApiClient();
        using var resumed = await other.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{id}"), Ct);
        await Eventually.UntilAsync(async () => await AttachLeaseProbe.LiveLeasesAsync(Db, id) == 1, Bound, "the other replica's lease", Ct);

        // Once the grace has passed by Redis's clock, the first replica's check finds the client back.
        await Eventually.UntilAsync(async () => await RedisNowAsync() - (long)await Db.StringGetAsync(RedisKeys.Left(id)) > Grace.TotalMilliseconds + 100,
            Bound, "the grace passed since the client left", Ct);
        var outcome = await fixture.Services.GetApiService<StreamCancellation>().CancelIfAbandonedAsync(id, Ct);

        Assert.Equal(CancelScripts.Reply.ClientReturned, outcome);
        Assert.False(await Db.KeyExistsAsync(RedisKeys.Cancelled(id)));

        // And when that client leaves in turn, its own replica cancels the generation after the grace.
        resumed.Dispose();
        await Eventually.UntilAsync(() => Db.KeyExistsAsync(RedisKeys.Cancelled(id)), Bound, "the stream cancelled once the second client left", Ct);
    }

    [Fact]
    public async Task ALeaseNobodyRenewsRunsOutSoTheStreamIsAbandonedOnceItsGraceHasPassedToo()
    {
        // As a replica that died leaves it: attached, never renewed, never detached.
        var id = RequestQueue.NewId();
        await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, "synthetic"))]);
        await Db.KeyExpireAsync(RedisKeys.Tokens(id), TimeSpan.FromMinutes(1));
        var attachments = fixture.Services.GetApiService<StreamAttachments>();
        var clock = Stopwatch.StartNew();
        await attachments.AttachAsync(attachments.NewLease(id), Ct);

        Assert.Equal(1, await AttachLeaseProbe.LiveLeasesAsync(Db, id));
        Assert.False(await AttachLeaseProbe.IsAbandonedAsync(Db, id, Grace));
        await Eventually.UntilAsync(() => AttachLeaseProbe.IsAbandonedAsync(Db, id, Grace), Bound, "the stream abandoned", Ct);

        // Lease (750 ms) then grace (2 s), give or take the clocks' milliseconds.
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(2700), Bound);
        Assert.Equal(0, await AttachLeaseProbe.LiveLeasesAsync(Db, id));
        Assert.Equal(CancelScripts.Reply.Cancelled, await fixture.Services.GetApiService<StreamCancellation>().CancelIfAbandonedAsync(id, Ct));
    }

    /// <summary>Starts a stream on <paramref name="replica"/>, reads its start, and leaves; returns once the leaving is recorded.</summary>
    private async Task<string> StartAndLeaveAsync(RunningServices replica)
    {
        using var client = replica.CreateApiClient();
        string id;
        using (var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "leave me" }), Ct))
        {
            id = IdOf(response);
            await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
            Assert.Equal("start", events.Current.EventType);
        }

        await Eventually.UntilAsync(() => Db.KeyExistsAsync(RedisKeys.Left(id)), Bound, "the client's leaving recorded", Ct);
        return id;
    }

    private async Task<long> RedisNowAsync()
    {
        var time = (RedisValue[])(await Db.ExecuteAsync("TIME"))!;
        return (long)time[0] * 1000 + (long)time[1] / 1000;
    }
}
