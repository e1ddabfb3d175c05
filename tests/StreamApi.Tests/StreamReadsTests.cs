using StackExchange.Redis;
using VixAspire.StreamApi.Streaming;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The replica's shared reader against a real redis-server: reads asked for together go out as few <c>XREAD</c>s,
/// and each reader still gets exactly its own stream's entries after its own position.
/// </summary>
public sealed class StreamReadsTests(RedisServer redis) : IClassFixture<RedisServer>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDatabase Db => redis.Database;

    [Fact]
    public async Task ManyStreamsReadAtOnceGoOutInFewCommandsAndEachGetsItsOwnEntries()
    {
        const int streams = 400;
        var keys = Enumerable.Range(0, streams).Select(i => (RedisKey)$"test:{{{Guid.NewGuid():N}}}:tokens").ToArray();
        var batch = Db.CreateBatch();
        var added = keys.SelectMany((key, i) => Enumerable.Range(0, 1 + (i % 3))
            .Select(n => batch.StreamAddAsync(key, "d", $"{i}:{n}"))).ToArray();
        batch.Execute();
        await Task.WhenAll(added);
        var before = await XreadCallsAsync();

        await using var reads = new StreamReads(redis.Connection);
        var results = await Task.WhenAll(keys.Select(key => reads.ReadAsync(key, RedisValue.Null, Ct)));

        var commands = await XreadCallsAsync() - before;
        Assert.InRange(commands, 1, streams / 4);
        for (var i = 0; i < streams; i++)
        {
            Assert.Equal(Enumerable.Range(0, 1 + (i % 3)).Select(n => $"{i}:{n}"), results[i].Select(e => (string)e["d"]!));
        }
    }

    [Fact]
    public async Task TwoReadersOfOneStreamAtDifferentPlacesEachGetWhatFollowsTheirOwnPlace()
    {
        RedisKey key = $"test:{{{Guid.NewGuid():N}}}:tokens";
        var ids = new List<RedisValue>();
        for (var n = 0; n < 5; n++)
        {
            ids.Add(await Db.StreamAddAsync(key, "d", n));
        }

        await using var reads = new StreamReads(redis.Connection);
        var fromStart = reads.ReadAsync(key, RedisValue.Null, Ct);
        var afterSecond = reads.ReadAsync(key, ids[1], Ct);
        var afterLast = reads.ReadAsync(key, ids[4], Ct);

        Assert.Equal(["0", "1", "2", "3", "4"], (await fromStart).Select(e => (string)e["d"]!));
        Assert.Equal(["2", "3", "4"], (await afterSecond).Select(e => (string)e["d"]!));
        Assert.Empty(await afterLast);
    }

    [Fact]
    public async Task AMissingStreamReadsEmptyAndAFarBehindReaderGetsABoundedBatch()
    {
        RedisKey key = $"test:{{{Guid.NewGuid():N}}}:tokens";
        var batch = Db.CreateBatch();
        var added = Enumerable.Range(0, StreamReads.EntriesPerStream + 10).Select(n => batch.StreamAddAsync(key, "d", n)).ToArray();
        batch.Execute();
        await Task.WhenAll(added);

        await using var reads = new StreamReads(redis.Connection);
        var missing = reads.ReadAsync($"test:{{{Guid.NewGuid():N}}}:tokens", RedisValue.Null, Ct);
        var behind = reads.ReadAsync(key, RedisValue.Null, Ct);
        // The largest id a client could send: valid, and after everything.
        var beyond = reads.ReadAsync(key, $"{ulong.MaxValue}-{ulong.MaxValue}", Ct);

        Assert.Empty(await missing);
        Assert.Equal(StreamReads.EntriesPerStream, (await behind).Length);
        Assert.Empty(await beyond);
    }

    private async Task<long> XreadCallsAsync()
    {
        var info = await Db.ExecuteAsync("INFO", "commandstats");
        var line = ((string)info!).Split('\n').FirstOrDefault(l => l.StartsWith("cmdstat_xread:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
    }
}
