using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// A queue of several partitions (as in a Redis Cluster) on one real redis-server: workers read every partition,
/// even with fewer generation slots than partitions, and settle each entry on its own partition.
/// </summary>
public sealed class QueuePartitionTests(QueuePartitionTests.Fixture fixture) : IClassFixture<QueuePartitionTests.Fixture>
{
    private const int Partitions = 3;

    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Redis:QueuePartitions"] = Partitions.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00",
                // Fewer slots than partitions: a reader blocked on an idle partition must not keep them from the others.
                ["Worker:MaxConcurrency"] = "2",
            }, workers: 2, gateway: false);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDatabase Db => fixture.Redis.Database;

    [Fact]
    public async Task RequestsOnEveryPartitionRunAndLeaveEveryPartitionSettled()
    {
        var queues = Enumerable.Range(0, Partitions).Select(RedisKeys.RequestPartition).ToList();
        var ids = new List<string>();
        for (var i = 0; i < 8 * Partitions; i++)
        {
            ids.Add(await EnqueueAsync(Db, Request($"partition {i}", 3), queue: queues[i % Partitions]));
        }

        foreach (var id in ids)
        {
            var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);
            Assert.Equal(EndReasons.Length, PayloadOf(entries[^1]).GetProperty("reason").GetString());
            Assert.Equal(3, entries.Count(e => EventOf(e) == EventNames.Token));
        }

        foreach (var queue in queues)
        {
            await WaitUntilSettledAsync(queue);
        }

        Assert.False(await Db.KeyExistsAsync(RedisKeys.Requests), "The workers read the one-partition queue too.");
    }

    [Theory]
    [InlineData(null, "127.0.0.1:6379", false, 1)]
    [InlineData(null, "127.0.0.1:7000,127.0.0.1:7001,password=p", true, RedisTopology.DefaultClusterPartitions)]
    [InlineData("standalone", "127.0.0.1:7000,127.0.0.1:7001", false, 1)]
    [InlineData("Cluster", "127.0.0.1:7000", true, RedisTopology.DefaultClusterPartitions)]
    [InlineData("process", "127.0.0.1:7000,127.0.0.1:7001", true, RedisTopology.DefaultClusterPartitions)]
    public void TheModeComesFromTheSettingElseFromHowManyNodesTheConnectionStringLists(string? mode, string connectionString, bool cluster, int partitions)
    {
        var topology = new RedisTopology(new RedisTopologyOptions { Mode = mode }, connectionString);

        Assert.Equal(cluster, topology.IsCluster);
        Assert.Equal(partitions, topology.Queues.Count);
        Assert.Equal(partitions, topology.Queues.Distinct().Count());
        Assert.Contains(topology.PickQueue(), topology.Queues);
    }

    [Fact]
    public void OnePartitionIsTheClassicQueueKeyAndSeveralHaveDistinctHashTags()
    {
        Assert.Equal([RedisKeys.Requests], new RedisTopology(new RedisTopologyOptions { Mode = "cluster", QueuePartitions = 1 }, null).Queues);
        Assert.Equal(["vix:{q0}:requests", "vix:{q1}:requests"],
            new RedisTopology(new RedisTopologyOptions { QueuePartitions = 2 }, null).Queues.Select(q => q.ToString()));
    }

    private Task WaitUntilSettledAsync(RedisKey queue) =>
        Eventually.UntilAsync(async () => await Db.StreamLengthAsync(queue) == 0
                && (await Db.StreamPendingAsync(queue, RedisKeys.WorkersGroup)).PendingMessageCount == 0,
            TimeSpan.FromSeconds(30), $"{queue} still holds entries.", Ct);
}
