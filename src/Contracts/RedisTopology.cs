using System.ComponentModel.DataAnnotations;
using StackExchange.Redis;

namespace VixAspire.Contracts;

/// <summary>The <c>Redis</c> section, read by the API and the worker alike: both must see the same values.</summary>
public sealed class RedisTopologyOptions
{
    public const string SectionName = "Redis";

    public const string Standalone = "standalone";
    public const string Cluster = "cluster";

    /// <summary>
    /// <c>standalone</c> or <c>cluster</c>; anything else (unset, or a stray value): cluster when the connection
    /// string lists several nodes. (The AppHost's choice of a Redis process or container is <c>Redis:Hosting</c>.)
    /// </summary>
    public string? Mode { get; set; }

    /// <summary>Queue streams, each with its own hash tag; unset: 1 standalone, <see cref="RedisTopology.DefaultClusterPartitions"/> in a cluster.</summary>
    [Range(1, RedisTopology.MaxPartitions)]
    public int? QueuePartitions { get; set; }
}

/// <summary>
/// The Redis layout the services agree on: standalone or cluster, and the request queue's partitions. One partition
/// is <see cref="RedisKeys.Requests"/>; several are <see cref="RedisKeys.RequestPartition"/> streams whose distinct
/// hash tags spread them over the cluster's shards, so that no shard carries all intake.
/// </summary>
public sealed class RedisTopology
{
    /// <summary>Six tags <c>q0</c>..<c>q5</c> fall two on each primary of a three-primary cluster made by <c>redis-cli --cluster create</c>.</summary>
    public const int DefaultClusterPartitions = 6;

    public const int MaxPartitions = 64;

    public RedisTopology(RedisTopologyOptions options, string? connectionString)
    {
        IsCluster = Is(options.Mode, RedisTopologyOptions.Cluster)
            || (!Is(options.Mode, RedisTopologyOptions.Standalone) && connectionString is not null
                && ConfigurationOptions.Parse(connectionString).EndPoints.Count > 1);
        var partitions = options.QueuePartitions ?? (IsCluster ? DefaultClusterPartitions : 1);
        Queues = partitions == 1 ? [RedisKeys.Requests] : [.. Enumerable.Range(0, partitions).Select(RedisKeys.RequestPartition)];
    }

    public bool IsCluster { get; }

    /// <summary>Every queue stream; workers read them all.</summary>
    public IReadOnlyList<RedisKey> Queues { get; }

    /// <summary>A queue stream for a new request, at random so that intake spreads evenly: workers read every one.</summary>
    public RedisKey PickQueue() => Queues.Count == 1 ? Queues[0] : Queues[Random.Shared.Next(Queues.Count)];

    private static bool Is(string? mode, string value) => string.Equals(mode, value, StringComparison.OrdinalIgnoreCase);
}
