using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Queue;

namespace VixAspire.Worker.Tests;

/// <summary>The worker's batched settlement against a real redis-server: entries finished together go out in few script calls, and each is acknowledged and deleted.</summary>
public sealed class EntrySettlerTests(RedisServer redis) : IClassFixture<RedisServer>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ManyEntriesFinishedTogetherAreAcknowledgedAndDeletedInFewCommands()
    {
        const int entries = 400;
        var db = redis.Database;
        RedisKey queue = $"test:{{{Guid.NewGuid():N}}}:requests";
        await db.StreamCreateConsumerGroupAsync(queue, RedisKeys.WorkersGroup, "0-0", createStream: true);
        var batch = db.CreateBatch();
        var added = Enumerable.Range(0, entries).Select(i => batch.StreamAddAsync(queue, "id", i)).ToArray();
        batch.Execute();
        await Task.WhenAll(added);
        var taken = await db.StreamReadGroupAsync(queue, RedisKeys.WorkersGroup, "me", ">", entries);
        Assert.Equal(entries, taken.Length);
        // Plus one unrelated pending entry, which must stay pending.
        var other = await db.StreamAddAsync(queue, "id", "other");
        await db.StreamReadGroupAsync(queue, RedisKeys.WorkersGroup, "me", ">", 1);
        var before = await ScriptCalls.CountAsync(redis.Connection);

        await using (var settler = new EntrySettler(redis.Connection, NullLogger<EntrySettler>.Instance))
        {
            await Task.WhenAll(taken.Select(e => settler.AcknowledgeAsync(queue, e.Id))).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        Assert.InRange(await ScriptCalls.CountAsync(redis.Connection) - before, 1, entries / 4);
        Assert.Equal(other, Assert.Single(await db.StreamRangeAsync(queue)).Id);
        var pending = await db.StreamPendingAsync(queue, RedisKeys.WorkersGroup);
        Assert.Equal(1, pending.PendingMessageCount);
    }

    [Fact]
    public async Task ASettlementRedisRefusesCompletesItsCallerAndLeavesTheOthersDone()
    {
        var db = redis.Database;
        RedisKey queue = $"test:{{{Guid.NewGuid():N}}}:requests";
        RedisKey broken = $"test:{{{Guid.NewGuid():N}}}:requests";
        await db.StreamCreateConsumerGroupAsync(queue, RedisKeys.WorkersGroup, "0-0", createStream: true);
        var id = await db.StreamAddAsync(queue, "id", "x");
        await db.StreamReadGroupAsync(queue, RedisKeys.WorkersGroup, "me", ">", 1);
        // Not a stream: Redis answers WRONGTYPE, as it would any command error. The caller is told nothing (the entry
        // stays pending and is claimed later) and must not hang; the other partition's entry is settled.
        await db.StringSetAsync(broken, "not a stream");
        await using var settler = new EntrySettler(redis.Connection, NullLogger<EntrySettler>.Instance);

        await Task.WhenAll(settler.AcknowledgeAsync(broken, "1-0"), settler.AcknowledgeAsync(queue, id)).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Empty(await db.StreamRangeAsync(queue));
        Assert.Equal(0, (await db.StreamPendingAsync(queue, RedisKeys.WorkersGroup)).PendingMessageCount);
        Assert.Equal("not a stream", await db.StringGetAsync(broken));
    }
}
