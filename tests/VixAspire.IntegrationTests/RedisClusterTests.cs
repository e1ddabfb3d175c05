using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The services on a real Redis Cluster (three primaries, a replica each), every service a real process behind the
/// real gateway: streams spread over the shards and all complete, and a primary SIGKILLed under running streams
/// leaves none hanging. Each test has a cluster of its own, since the second one breaks it.
/// </summary>
public sealed class RedisClusterTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private readonly RedisCluster _cluster = new();
    private ServiceProcesses _stack = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _cluster.InitializeAsync();
        _stack = await ServiceProcesses.StartAsync(_cluster.ConnectionString, new Dictionary<string, string?>
        {
            ["Redis:Mode"] = "cluster",
            // A wake-up lost while a shard fails over costs at most a heartbeat. Attach leases last 2.5 heartbeats and
            // cannot be renewed during the failover: with the disconnect grace they must outlast it, or a followed
            // stream is taken for abandoned and cancelled.
            ["Streaming:HeartbeatInterval"] = "00:00:05",
            // Longer than a failover (node timeout, election, clients finding the new primary), during which no worker
            // can renew its claims: shorter, and live runs would be taken for orphans.
            ["Worker:ClaimIdleTime"] = "00:00:15",
            ["Worker:ClaimInterval"] = "00:00:01",
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
        }, apis: 2, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _stack.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task StreamsSpreadOverTheShardsAndEveryOneCompletes()
    {
        const int Streams = 60;
        const int Tokens = 40;
        await StartWorkersAsync(tokenDelay: "00:00:00.002");
        using var client = _stack.CreateClient();

        var streams = Enumerable.Range(0, Streams).Select(i => Follow(client, $"spread {i}", Tokens)).ToList();
        var results = await AwaitAllAsync(streams);

        Assert.All(results, events =>
        {
            Assert.Null(events.Malformation());
            Assert.DoesNotContain(events, e => e.EventType == "error");
            Assert.Equal(EndReasons.Length, events.EndReason());
            Assert.Equal(Tokens, events.Count(e => e.EventType == "token"));
        });

        // The token streams, and the queue partitions that took the requests, live on every primary.
        var ids = results.Select(r => r[0].Payload.GetProperty("id").GetString()!).ToList();
        var streamPrimaries = await _cluster.PrimariesOfAsync(ids.Select(RedisKeys.Tokens));
        var partitions = new RedisTopology(new RedisTopologyOptions { Mode = RedisTopologyOptions.Cluster }, null).Queues;
        var used = new List<RedisKey>();
        foreach (var partition in partitions)
        {
            var group = Assert.Single(await _cluster.Database.StreamGroupInfoAsync(partition));
            Assert.Equal(0, group.PendingMessageCount);
            if (group.EntriesRead > 0)
            {
                used.Add(partition);
            }
        }

        var intakePrimaries = await _cluster.PrimariesOfAsync(used);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{Streams} streams on {streamPrimaries.Count} primaries; requests queued on {used.Count} of {partitions.Count} partitions, on {intakePrimaries.Count} primaries");
        Assert.Equal(RedisCluster.Primaries, streamPrimaries.Count);
        Assert.True(intakePrimaries.Count > 1, $"Every request was queued on one primary ({string.Join(", ", used)}).");
    }

    [Fact]
    public async Task APrimaryKilledUnderRunningStreamsLeavesNoStreamHanging()
    {
        const int Streams = 40;
        const int Tokens = 60;
        await StartWorkersAsync(tokenDelay: "00:00:00.100");
        using var client = _stack.CreateClient();

        var streams = Enumerable.Range(0, Streams).Select(i => Follow(client, $"failover {i}", Tokens)).ToList();
        await Task.WhenAll(streams.Select(s => s.FirstToken)).WaitAsync(Deadline, Ct);

        // The shard of the first stream: it holds some of the running streams, and queue partitions too.
        var victimKey = RedisKeys.Tokens(await streams[0].Id);
        var killed = await _cluster.KillPrimaryOfAsync(victimKey);
        var results = await AwaitAllAsync(streams);

        var completed = 0;
        var failed = new List<string>();
        Assert.All(results, events =>
        {
            Assert.Null(events.Malformation());
            if (events.FirstOrDefault(e => e.EventType == "error") is { } error)
            {
                failed.Add(error.Payload.GetProperty("code").GetString()!);
                Assert.Equal(EndReasons.Error, events.EndReason());
            }
            else
            {
                completed++;
                Assert.Equal(EndReasons.Length, events.EndReason());
                Assert.Equal(Tokens, events.Count(e => e.EventType == "token"));
            }
        });

        await _cluster.WaitForFailoverAsync(victimKey);
        var after = Follow(client, "after the failover", Tokens);
        var afterEvents = await after.Events.WaitAsync(Deadline, Ct);
        Assert.Null(afterEvents.Malformation());
        Assert.Equal(EndReasons.Length, afterEvents.EndReason());
        Assert.NotEqual(killed, await _cluster.PrimaryOfAsync(victimKey));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"Killed primary {killed}: of {Streams} running streams, {completed} completed, {failed.Count} ended with an error ({string.Join(", ", failed.CountBy(c => c).Select(c => $"{c.Value} {c.Key}"))}); a new stream completed after the failover.");
    }

    private async Task StartWorkersAsync(string tokenDelay)
    {
        for (var i = 0; i < 2; i++)
        {
            await _stack.StartWorkerAsync(new Dictionary<string, string?> { ["Providers:Synthetic:TokenDelay"] = tokenDelay }, Ct);
        }
    }

    private static StreamFollowing Follow(HttpClient client, string prompt, int tokens) =>
        StreamFollowing.Start(client, new { prompt, max_tokens = tokens }, Ct);

    /// <summary>Every stream's events; fails, naming the streams still open, when any has no end by the deadline.</summary>
    private async Task<List<ServerEvent>[]> AwaitAllAsync(List<StreamFollowing> streams)
    {
        var all = Task.WhenAll(streams.Select(s => s.Events));
        if (await Task.WhenAny(all, Task.Delay(Deadline, Ct)) != all)
        {
            var open = streams.Where(s => !s.Events.IsCompleted).Select(s => s.Id.IsCompletedSuccessfully ? s.Id.Result : "(no id)");
            Assert.Fail($"{streams.Count(s => s.Events.IsCompleted)} of {streams.Count} streams ended; still open: {string.Join(", ", open)}.\n{_stack.Logs}");
        }

        return await all;
    }
}
