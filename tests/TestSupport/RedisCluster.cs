using System.Diagnostics;
using System.Globalization;
using System.Net;
using StackExchange.Redis;
using Xunit;

namespace VixAspire.TestSupport;

/// <summary>
/// A real Redis Cluster on loopback, private to one fixture: three primaries with a replica each, every node a
/// <c>redis-server --cluster-enabled yes</c> on free ports (client and bus), with a password, joined by
/// <c>redis-cli --cluster create</c>. A short node timeout makes a killed primary's replica take over in seconds.
/// </summary>
public sealed class RedisCluster : IAsyncLifetime
{
    public const int Primaries = 3;

    /// <summary>How long a primary may be unreachable before the cluster fails it over.</summary>
    public static readonly TimeSpan NodeTimeout = TimeSpan.FromMilliseconds(1000);

    private static readonly TimeSpan FormationTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly List<RedisProcess> _nodes = [];
    private ConnectionMultiplexer? _connection;

    public string Password { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Every node, primaries and replicas, as the services' connection string lists them.</summary>
    public string ConnectionString =>
        string.Join(",", _nodes.Select(n => $"127.0.0.1:{n.Port.ToString(CultureInfo.InvariantCulture)}")) + $",password={Password}";

    public IConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("Not started.");

    public IDatabase Database => Connection.GetDatabase();

    public async ValueTask InitializeAsync()
    {
        for (var i = 0; i < 2 * Primaries; i++)
        {
            _nodes.Add(await StartNodeAsync());
        }

        await CreateAsync();
        var config = ConfigurationOptions.Parse(ConnectionString);
        config.AllowAdmin = true;
        config.AbortOnConnectFail = false;
        _connection = await ConnectionMultiplexer.ConnectAsync(config);
        await WaitUntilAsync(async () => await IsHealthyAsync(_nodes), "every node to see the cluster ok and every replica in sync");
    }

    /// <summary>The primary serving <paramref name="key"/>'s slot, as the cluster sees it now.</summary>
    public async Task<EndPoint> PrimaryOfAsync(RedisKey key)
    {
        var slot = Connection.HashSlot(key);
        foreach (var node in Live)
        {
            try
            {
                var nodes = await Server(node).ClusterNodesAsync();
                if (nodes?.GetBySlot(slot) is { IsReplica: false } primary)
                {
                    return primary.EndPoint!;
                }
            }
            catch (RedisException)
            {
                // Ask another node.
            }
        }

        throw new InvalidOperationException($"No node knows the primary of slot {slot}.");
    }

    /// <summary>The primaries that serve at least one of <paramref name="keys"/>.</summary>
    public async Task<HashSet<EndPoint>> PrimariesOfAsync(IEnumerable<RedisKey> keys)
    {
        var primaries = new HashSet<EndPoint>();
        foreach (var key in keys)
        {
            primaries.Add(await PrimaryOfAsync(key));
        }

        return primaries;
    }

    /// <summary>SIGKILLs the primary serving <paramref name="key"/>; its replica takes over once the node timeout passes.</summary>
    public async Task<EndPoint> KillPrimaryOfAsync(RedisKey key)
    {
        var endPoint = await PrimaryOfAsync(key);
        var node = _nodes.Single(n => n.Port == ((IPEndPoint)endPoint).Port);
        await node.KillAsync();
        return endPoint;
    }

    /// <summary>Waits until the survivors report the cluster ok again with <paramref name="key"/>'s slot on a live primary.</summary>
    public Task WaitForFailoverAsync(RedisKey key) =>
        WaitUntilAsync(async () =>
        {
            foreach (var node in Live)
            {
                var info = await Server(node).ExecuteAsync("CLUSTER", "INFO");
                if (!info.ToString().Contains("cluster_state:ok", StringComparison.Ordinal))
                {
                    return false;
                }
            }

            var primary = await PrimaryOfAsync(key);
            return Live.Any(n => n.Port == ((IPEndPoint)primary).Port);
        }, "a replica to take over the killed primary's slots");

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private IEnumerable<RedisProcess> Live => _nodes.Where(n => !n.HasExited);

    private IServer Server(RedisProcess node) => Connection.GetServer(IPAddress.Loopback, node.Port);

    private async Task<RedisProcess> StartNodeAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = RedisProcess.FreePort();
            var busPort = RedisProcess.FreePort();
            try
            {
                return await RedisProcess.StartAsync(port,
                [
                    "--cluster-enabled", "yes", "--cluster-port", busPort.ToString(CultureInfo.InvariantCulture),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", ((int)NodeTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
                    // A replica may always take over, however long it was out of touch.
                    "--cluster-replica-validity-factor", "0",
                    "--requirepass", Password, "--masterauth", Password,
                ]);
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // Another process took a port between probe and bind: try others.
            }
        }
    }

    /// <summary>Joins the nodes: the first three become primaries (slots split evenly), the others their replicas.</summary>
    private async Task CreateAsync()
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("REDIS_CLI") ?? "redis-cli")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-a", Password, "--no-auth-warning", "--cluster", "create"])
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var node in _nodes)
        {
            start.ArgumentList.Add($"127.0.0.1:{node.Port.ToString(CultureInfo.InvariantCulture)}");
        }

        foreach (var argument in (string[])["--cluster-replicas", "1", "--cluster-yes"])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(FormationTimeout);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"redis-cli --cluster create failed ({process.ExitCode}):\n{await output}\n{await error}");
        }
    }

    private async Task<bool> IsHealthyAsync(IEnumerable<RedisProcess> nodes)
    {
        foreach (var node in nodes)
        {
            var server = Server(node);
            try
            {
                var info = (await server.ExecuteAsync("CLUSTER", "INFO")).ToString();
                if (!info.Contains("cluster_state:ok", StringComparison.Ordinal)
                    || !info.Contains($"cluster_known_nodes:{2 * Primaries}", StringComparison.Ordinal))
                {
                    return false;
                }

                var replication = (await server.ExecuteAsync("INFO", "replication")).ToString();
                if (replication.Contains("role:slave", StringComparison.Ordinal) && !replication.Contains("master_link_status:up", StringComparison.Ordinal))
                {
                    return false;
                }
            }
            catch (RedisException)
            {
                return false;
            }
        }

        return true;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > FormationTimeout)
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }

            await Task.Delay(PollInterval);
        }
    }
}
