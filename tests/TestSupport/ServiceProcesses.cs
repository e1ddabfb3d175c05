namespace VixAspire.TestSupport;

/// <summary>
/// The production topology as plain processes: a real redis-server (or Redis Cluster), StreamApi and Worker replicas,
/// and the gateway balancing over the API replicas. Any of them can be SIGKILLed or SIGTERMed by a test.
/// </summary>
public sealed class ServiceProcesses : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _common;
    private readonly List<ServiceProcess> _all = [];

    private ServiceProcesses(string redisConnectionString, IReadOnlyDictionary<string, string?> settings) =>
        _common = new Dictionary<string, string?>(settings) { ["ConnectionStrings:redis"] = redisConnectionString };

    public List<ServiceProcess> Apis { get; } = [];

    public List<ServiceProcess> Workers { get; } = [];

    public ServiceProcess Gateway { get; private set; } = null!;

    /// <summary>Starts <paramref name="apis"/> API replicas and the gateway in front of them; workers are started by the test.</summary>
    public static Task<ServiceProcesses> StartAsync(RedisServer redis, IReadOnlyDictionary<string, string?> settings, int apis,
        CancellationToken cancellationToken) =>
        StartAsync(redis.ConnectionString, settings, apis, cancellationToken);

    /// <summary>Starts <paramref name="apis"/> API replicas and the gateway, all on the Redis of <paramref name="redisConnectionString"/>.</summary>
    public static async Task<ServiceProcesses> StartAsync(string redisConnectionString, IReadOnlyDictionary<string, string?> settings, int apis,
        CancellationToken cancellationToken)
    {
        var stack = new ServiceProcesses(redisConnectionString, settings);
        try
        {
            for (var i = 0; i < apis; i++)
            {
                stack.Apis.Add(await stack.StartAsync("StreamApi", $"streamapi-{i}", ApiEndpoints.Settings(), cancellationToken));
            }

            var destinations = new Dictionary<string, string?>();
            for (var i = 0; i < stack.Apis.Count; i++)
            {
                // The first replaces the service-discovery destination of the gateway's own configuration.
                foreach (var (key, value) in ApiEndpoints.GatewayDestinations(i == 0 ? "streamapi" : $"streamapi-{i}", stack.Apis[i].Address, stack.Apis[i].Http2Address))
                {
                    destinations[key] = value;
                }
            }

            stack.Gateway = await stack.StartAsync("Gateway", "gateway", destinations, cancellationToken);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a worker with the stack's settings plus its own.</summary>
    public async Task<ServiceProcess> StartWorkerAsync(IReadOnlyDictionary<string, string?>? settings, CancellationToken cancellationToken)
    {
        var worker = await StartAsync("Worker", $"worker-{Workers.Count}", settings, cancellationToken);
        Workers.Add(worker);
        return worker;
    }

    /// <summary>A client for the gateway that closes its connection when it drops a response, as curl does.</summary>
    public HttpClient CreateClient() => RunningServices.CreateClient(Gateway.Address);

    /// <summary>What every process printed, for a failure message.</summary>
    public string Logs => string.Join("\n", _all.Select(p => $"--- {p.Name} (pid {p.Pid}){(p.HasExited ? ", exited" : "")}\n{p.Output}"));

    private async Task<ServiceProcess> StartAsync(string project, string name, IReadOnlyDictionary<string, string?>? extra, CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string?>(_common);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var process = await ServiceProcess.StartAsync(project, name, settings, cancellationToken);
        _all.Add(process);
        return process;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _all)
        {
            await process.DisposeAsync();
        }
    }
}
