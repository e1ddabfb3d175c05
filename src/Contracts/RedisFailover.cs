using StackExchange.Redis;

namespace VixAspire.Contracts;

/// <summary>Errors a Redis Cluster answers while a shard fails over, and which pass once a replica has taken over.</summary>
public static class RedisFailover
{
    private static readonly string[] TransientPrefixes = ["CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING"];

    /// <summary>
    /// True for <c>CLUSTERDOWN</c> (a primary is failing and the cluster refuses commands until its replica is
    /// promoted), <c>TRYAGAIN</c>, <c>MASTERDOWN</c> and <c>LOADING</c>: worth retrying like a dropped connection.
    /// </summary>
    public static bool IsTransient(Exception exception) =>
        exception is RedisServerException server && Array.Exists(TransientPrefixes, p => server.Message.StartsWith(p, StringComparison.Ordinal));
}
