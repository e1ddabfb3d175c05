using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VixAspire.Gateway;
using VixAspire.StreamApi;
using VixAspire.Worker;

namespace VixAspire.TestSupport;

/// <summary>
/// The real services, composed as their Program.cs composes them, on real Kestrel servers bound to
/// loopback ports, talking to a real <see cref="RedisServer"/>: StreamApi, any number of workers, and
/// gateways in front. <see cref="StartGatewayAsync"/> is the one gateway host of the tests.
/// </summary>
public sealed class RunningServices : IAsyncDisposable
{
    private const int MaxBindAttempts = 5;

    private readonly List<WebApplication> _apps = [];
    private readonly List<WebApplication> _workers = [];
    private Action<IServiceCollection>? _workerServices;
    private Dictionary<string, string?> _common = [];

    private RunningServices()
    {
    }

    public WebApplication Api { get; private set; } = null!;

    public WebApplication? Gateway { get; private set; }

    public IReadOnlyList<WebApplication> Workers => _workers;

    public Uri ApiAddress { get; private set; } = null!;

    /// <summary>The API's cleartext HTTP/2 endpoint, which the gateway forwards to unless <c>Gateway:UpstreamHttp2</c> is false.</summary>
    public Uri ApiHttp2Address { get; private set; } = null!;

    public Uri? GatewayAddress { get; private set; }

    /// <summary>A client for the public door: the gateway when there is one, else the API.</summary>
    public HttpClient CreateClient() => CreateClient(GatewayAddress ?? ApiAddress);

    public HttpClient CreateApiClient() => CreateClient(ApiAddress);

    /// <summary>
    /// A client that, like curl or a browser, closes the connection when it drops a response. (By default
    /// .NET drains an abandoned response for up to 2 s to reuse the connection, which would delay the
    /// server's view of the disconnect.)
    /// </summary>
    public static HttpClient CreateClient(Uri baseAddress) =>
        new(new SocketsHttpHandler { MaxResponseDrainSize = 0, ResponseDrainTimeout = TimeSpan.Zero })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromMinutes(2),
        };

    public static async Task<RunningServices> StartAsync(
        RedisServer redis,
        IReadOnlyDictionary<string, string?>? settings = null,
        int workers = 1,
        bool gateway = true,
        Action<IServiceCollection>? workerServices = null,
        Action<IServiceCollection>? apiServices = null,
        CancellationToken cancellationToken = default)
    {
        var stack = new RunningServices { _workerServices = workerServices };
        try
        {
            stack._common = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
            {
                ["ConnectionStrings:redis"] = redis.ConnectionString,
            };

            // The HTTP/2 port is chosen before Kestrel binds it, so another test's listener may take it first: choose again.
            for (var attempt = 1; ; attempt++)
            {
                var apiSettings = new Dictionary<string, string?>(stack._common);
                foreach (var (key, value) in ApiEndpoints.Settings())
                {
                    apiSettings[key] = value;
                }

                try
                {
                    stack.ApiHttp2Address = ApiEndpoints.Http2Address(apiSettings)!;
                    stack.Api = stack.Track(await StartHostAsync(apiSettings, b =>
                    {
                        b.AddStreamApiServices();
                        apiServices?.Invoke(b.Services);
                    }, static a => a.MapStreamApi(), cancellationToken));
                    break;
                }
                catch (IOException ex) when (ex.InnerException is AddressInUseException && attempt < MaxBindAttempts)
                {
                }
            }

            stack.ApiAddress = new Uri(stack.Api.Urls.First(u => new Uri(u) != stack.ApiHttp2Address));

            for (var i = 0; i < workers; i++)
            {
                await stack.StartWorkerAsync(stack._common, cancellationToken);
            }

            if (gateway)
            {
                stack.Gateway = await stack.AddGatewayAsync(cancellationToken: cancellationToken);
                stack.GatewayAddress = Address(stack.Gateway);
            }

            return stack;
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts a gateway in front of this stack's API, with <paramref name="settings"/> over the stack's own and
    /// the API's addresses (they may name other destinations); it stops with the stack.
    /// </summary>
    public async Task<WebApplication> AddGatewayAsync(IReadOnlyDictionary<string, string?>? settings = null, ILoggerProvider? logs = null,
        CancellationToken cancellationToken = default)
    {
        var gatewaySettings = new Dictionary<string, string?>(_common);
        foreach (var (key, value) in ApiEndpoints.GatewayDestinations("streamapi", ApiAddress, ApiHttp2Address).Concat(settings ?? new Dictionary<string, string?>()))
        {
            gatewaySettings[key] = value;
        }

        return Track(await StartGatewayAsync(gatewaySettings, cancellationToken, logs));
    }

    /// <summary>
    /// The gateway as its Program.cs composes it, with its real routes (the gateway's appsettings.json) and
    /// <paramref name="settings"/> over them, its destinations among them. The caller disposes it.
    /// <paramref name="logs"/>, when given, receives everything it logs, down to Trace (YARP's and Kestrel's included).
    /// </summary>
    public static Task<WebApplication> StartGatewayAsync(IReadOnlyDictionary<string, string?> settings, CancellationToken cancellationToken,
        ILoggerProvider? logs = null) =>
        StartHostAsync(settings, b =>
        {
            if (logs is not null)
            {
                b.Logging.AddProvider(logs);
                b.Services.Configure<LoggerFilterOptions>(o => o.Rules.Add(new LoggerFilterRule(logs.GetType().FullName, null, LogLevel.Trace, null)));
            }

            b.AddGateway();
        }, static a => a.MapGateway(), cancellationToken, Path.Combine(AppContext.BaseDirectory, "gateway.appsettings.json"));

    public async Task<WebApplication> StartWorkerAsync(IReadOnlyDictionary<string, string?> settings, CancellationToken cancellationToken)
    {
        var extra = _workerServices;
        var worker = Track(await StartHostAsync(settings, b =>
        {
            b.AddWorkerServices();
            extra?.Invoke(b.Services);
        }, static a => a.MapDefaultEndpoints(), cancellationToken));
        _workers.Add(worker);
        return worker;
    }

    /// <summary>Stops one worker as SIGTERM would: the host's stopping token fires and it shuts down gracefully.</summary>
    public async Task StopWorkerAsync(WebApplication worker, CancellationToken cancellationToken)
    {
        await worker.StopAsync(cancellationToken);
        await worker.DisposeAsync();
        _workers.Remove(worker);
        _apps.Remove(worker);
    }

    private WebApplication Track(WebApplication app)
    {
        _apps.Add(app);
        return app;
    }

    /// <summary>A service host on a loopback port of Kestrel's choosing; one that fails to start is stopped and disposed.</summary>
    private static async Task<WebApplication> StartHostAsync(
        IReadOnlyDictionary<string, string?> settings,
        Action<WebApplicationBuilder> addServices,
        Action<WebApplication> map,
        CancellationToken cancellationToken,
        string? jsonFile = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = Environments.Production,
            // An empty content root: no stray appsettings.json from another service's build output.
            ContentRootPath = Directory.CreateTempSubdirectory("vix-test-host-").FullName,
        });
        if (jsonFile is not null)
        {
            builder.Configuration.AddJsonFile(jsonFile, optional: false);
        }

        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(Environment.GetEnvironmentVariable("VIX_TEST_LOG") is { } level ? Enum.Parse<LogLevel>(level) : LogLevel.Warning);
        builder.AddServiceDefaults();
        addServices(builder);

        var app = builder.Build();
        map(app);
        try
        {
            await app.StartAsync(cancellationToken);
            return app;
        }
        catch
        {
            // A host whose start failed (options validation, a port) has nothing to stop, and stopping it throws.
            await app.DisposeAsync();
            throw;
        }
    }

    private static Uri Address(WebApplication app) => new(app.Urls.First());

    public T GetApiService<T>() where T : notnull => Api.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        for (var i = _apps.Count - 1; i >= 0; i--)
        {
            await _apps[i].StopAsync(CancellationToken.None);
            await _apps[i].DisposeAsync();
        }

        _apps.Clear();
    }
}
