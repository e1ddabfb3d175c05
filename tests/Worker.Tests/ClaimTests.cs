using Microsoft.AspNetCore.Builder;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// Claims between workers, against a real redis-server: a dead consumer's requests all end, even when the
/// survivor has fewer slots than there are orphans, and renewing one's own requests never takes back one
/// that another consumer has claimed meanwhile.
/// </summary>
public sealed class ClaimTests : ServicesFixture
{
    private const string DeadConsumer = "dead-worker";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDatabase Db => Redis.Database;

    public override ValueTask InitializeAsync() => StartAsync(workers: 0, gateway: false, cancellationToken: Ct);

    [Fact]
    public async Task EveryRequestOfAKilledWorkerEndsOnceOnASurvivorWithFewerSlotsThanOrphans()
    {
        await Db.StreamCreateConsumerGroupAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, "0-0", createStream: true);
        var withTokens = new List<string>();
        var withoutTokens = new List<string>();
        for (var i = 0; i < 60; i++)
        {
            var id = await EnqueueAsync(Db, Request($"orphan {i}", 3));
            if (i % 3 == 0)
            {
                await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Token), new(StreamFields.Data, Envelopes.Token("half", 0))]);
                withTokens.Add(id);
            }
            else
            {
                withoutTokens.Add(id);
            }
        }

        // The killed worker had read all 60 and will never acknowledge them.
        var delivered = await Db.StreamReadGroupAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, DeadConsumer, ">", count: 60);
        Assert.Equal(60, delivered.Length);

        await StartClaimingWorkerAsync("00:00:01",
            ("Providers:Synthetic:TokenDelay", "00:00:00.010"), ("Worker:MaxConcurrency", "8"), ("Worker:BlockTimeout", "00:00:00.200"));

        foreach (var id in withTokens.Concat(withoutTokens))
        {
            await WaitUntilDequeuedAsync(Redis.Connection, id, Ct);
        }

        var pending = await Db.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.Equal(0, pending.PendingMessageCount);
        foreach (var id in withTokens)
        {
            var entries = await Db.StreamRangeAsync(RedisKeys.Tokens(id));
            Assert.Equal(["start", "token", "error", "end"], entries.Select(EventOf));
            Assert.Equal(ErrorCodes.WorkerLost, PayloadOf(entries[2]).GetProperty("code").GetString());
        }

        foreach (var id in withoutTokens)
        {
            var entries = await Db.StreamRangeAsync(RedisKeys.Tokens(id));
            Assert.Equal(["start", "token", "token", "token", "end"], entries.Select(EventOf));
            Assert.Equal("length", PayloadOf(entries[^1]).GetProperty("reason").GetString());
        }
    }

    [Fact]
    public async Task AfterAFullClaimBatchTheNextClaimRoundDoesNotWaitBehindABlockingRead()
    {
        const int orphans = 100;
        await Db.StreamCreateConsumerGroupAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, "0-0", createStream: true);
        var ids = new List<string>();
        for (var i = 0; i < orphans; i++)
        {
            var id = await EnqueueAsync(Db, Request($"orphan {i}", 3));
            await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Token), new(StreamFields.Data, Envelopes.Token("half", 0))]);
            ids.Add(id);
        }

        Assert.Equal(orphans, (await Db.StreamReadGroupAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, DeadConsumer, ">", count: orphans)).Length);
        await using var monitor = await RedisMonitor.StartAsync(Redis, Ct);

        // A survivor with room for more than a claim batch each round, whose idle reads block long.
        await StartClaimingWorkerAsync("00:00:01", ("Worker:MaxConcurrency", "64"), ("Worker:BlockTimeout", "00:00:05"));
        foreach (var id in ids)
        {
            await WaitUntilDequeuedAsync(Redis.Connection, id, Ct);
        }

        // A dead worker's hundred streams take seven claim rounds of 16; between the first and the last, no read
        // blocked (before, each full round was followed by one, BLOCK long, per round).
        var sent = monitor.Sent();
        var claims = Enumerable.Range(0, sent.Count).Where(i => sent[i].Name == "XAUTOCLAIM").ToList();
        Assert.True(claims.Count >= 7, $"{claims.Count} claim rounds");
        var rounds = sent.Take(claims[6]).Skip(claims[0]);
        Assert.DoesNotContain(rounds, c => c.Name == "XREADGROUP" && c.Arguments.Contains("BLOCK"));
        foreach (var id in ids)
        {
            var entries = await Db.StreamRangeAsync(RedisKeys.Tokens(id));
            Assert.Equal(["start", "token", "error", "end"], entries.Select(EventOf));
        }
    }

    [Fact]
    public async Task RenewingItsOwnRequestsNeverTakesBackOneAnotherConsumerClaimed()
    {
        // Nothing is idle long enough to be taken as an orphan: only renewals run.
        await StartClaimingWorkerAsync("00:10:00", ("Providers:Synthetic:TokenDelay", "00:00:00.050"));
        var stolen = await EnqueueAsync(Db, Request("stolen", 5000));
        var kept = await EnqueueAsync(Db, Request("kept", 5000));
        foreach (var id in new[] { stolen, kept })
        {
            await WaitForAsync(Redis.Connection, id, e => e.Any(x => EventOf(x) == EventNames.Token), TimeSpan.FromSeconds(30), Ct);
        }

        var entryIds = await EntryIdsAsync();
        await Db.StreamClaimIdsOnlyAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, "thief", 0, [entryIds[stolen]]);

        // Idle time only grows until a renewal resets it: a reading below the one before it, both taken after
        // the theft, means the worker has renewed its entries since.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var previous = await IdleAsync(entryIds[kept]);
        while (await IdleAsync(entryIds[kept]) is var idle && idle >= previous)
        {
            Assert.True(DateTime.UtcNow < deadline, "the worker never renewed its own entry");
            previous = idle;
            await Task.Delay(TimeSpan.FromMilliseconds(20), Ct);
        }

        var owner = await Db.StreamPendingMessagesAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, 1, RedisValue.Null, entryIds[stolen], entryIds[stolen]);
        Assert.Equal("thief", Assert.Single(owner).ConsumerName.ToString());
    }

    private async Task<Dictionary<string, RedisValue>> EntryIdsAsync()
    {
        var queued = await Db.StreamRangeAsync(RedisKeys.Requests);
        return queued.ToDictionary(e => e[StreamFields.RequestId].ToString(), e => e.Id);
    }

    private async Task<long> IdleAsync(RedisValue entryId)
    {
        var pending = await Db.StreamPendingMessagesAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, 1, RedisValue.Null, entryId, entryId);
        return Assert.Single(pending).IdleTimeInMilliseconds;
    }

    /// <summary>A worker on this test's Redis that claims every 100 ms what has been idle for <paramref name="claimIdleTime"/>, with a synthetic model without first-token delay.</summary>
    private Task<WebApplication> StartClaimingWorkerAsync(string claimIdleTime, params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = Redis.ConnectionString,
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Worker:ClaimIdleTime"] = claimIdleTime,
            ["Worker:ClaimInterval"] = "00:00:00.100",
        };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }

        return Services.StartWorkerAsync(all, Ct);
    }
}
