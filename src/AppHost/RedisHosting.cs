using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace VixAspire.AppHost;

/// <summary>
/// Redis as a container where a container runtime answers, else as a local <c>redis-server</c> process
/// (an executable resource on a port Aspire allocates). <c>Redis:Hosting</c> (auto, container, process)
/// overrides the choice; <c>Redis:Mode</c> is the services' (standalone or cluster), not the AppHost's.
/// </summary>
internal static class RedisHosting
{
    public const string HostingKey = "Redis:Hosting";

    public const string InstallHint =
        "VixAspire needs Redis: install redis-server (sudo apt-get install -y redis-server) or start a container runtime (Docker or Podman).";

    public static bool TryAddRedis(IDistributedApplicationBuilder builder, string name,
        [NotNullWhen(true)] out IResourceBuilder<IResourceWithConnectionString>? redis, [NotNullWhen(false)] out string? problem)
    {
        var settings = RedisServerSettings.From(builder.Configuration);
        if (builder.Configuration["Redis:Mode"] is "auto" or "container" or "process")
        {
            redis = null;
            problem = $"Redis:Mode is the services' setting (standalone or cluster); the AppHost's choice of a Redis container or process is {HostingKey}.";
            return false;
        }

        var hosting = builder.Configuration[HostingKey] ?? "auto";
        if (hosting is not ("auto" or "container" or "process"))
        {
            redis = null;
            problem = $"{HostingKey} must be auto, container or process (was '{hosting}').";
            return false;
        }

        if (hosting == "container" || (hosting == "auto" && ContainerRuntimeAnswers(builder.Configuration)))
        {
            // AddRedis generates the redis-password parameter and passes it through the container's environment.
            var container = builder.AddRedis(name).WithArgs(context => AppendToShellCommand(context, settings.Args));
            redis = builder.CreateResourceBuilder<IResourceWithConnectionString>(container.Resource);
            problem = null;
            return true;
        }

        var executable = builder.Configuration["Redis:ServerPath"] ?? FindOnPath("redis-server");
        if (executable is null)
        {
            redis = null;
            problem = InstallHint;
            return false;
        }

        redis = builder.CreateResourceBuilder<IResourceWithConnectionString>(AddRedisServer(builder, name, executable, settings).Resource);
        problem = null;
        return true;
    }

    private static IResourceBuilder<RedisServerResource> AddRedisServer(IDistributedApplicationBuilder builder, string name, string executable,
        RedisServerSettings settings)
    {
        // Same name and alphabet as AddRedis's own: Parameters:redis-password overrides it, and the value stays
        // free of the ',' and '=' that a connection string would split on.
        var password = builder.AddResource(ParameterResourceBuilderExtensions.CreateDefaultPasswordParameter(builder, $"{name}-password", special: false));
        var workingDirectory = Directory.CreateTempSubdirectory("vixaspire-redis-").FullName;
        var resource = new RedisServerResource(name, executable, workingDirectory, password.Resource);
        var configFile = Path.Combine(workingDirectory, "vixaspire-redis.conf");
        var healthKey = $"{name}_ping";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthKey, ct => PingAsync(resource, ct));
        // The password goes into a file only redis-server reads, not on its command line, where ps and the
        // dashboard's resource details would show it.
        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(resource, async (_, ct) =>
            await WriteConfigFileAsync(configFile, await password.Resource.GetValueAsync(ct) ?? "", ct));

        return builder.AddResource(resource)
            .WithEndpoint(RedisServerResource.EndpointName, endpoint =>
            {
                endpoint.UriScheme = "tcp";
                endpoint.Transport = "tcp";
                endpoint.IsProxied = false;
            })
            .WithArgs(context =>
            {
                context.Args.Add(configFile);
                context.Args.Add("--port");
                context.Args.Add(resource.PrimaryEndpoint.Property(EndpointProperty.TargetPort));
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                foreach (var arg in settings.Args)
                {
                    context.Args.Add(arg);
                }
            })
            .WithHealthCheck(healthKey);
    }

    private static async Task WriteConfigFileAsync(string path, string password, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        // No byte-order mark: redis-server would read it as part of the first directive.
        await using var file = new StreamWriter(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), options);
        var quoted = password.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
        await file.WriteAsync($"requirepass \"{quoted}\"\n".AsMemory(), cancellationToken);
    }

    /// <summary>AddRedis runs <c>/bin/sh -c "redis-server …"</c>: our options belong inside that command.</summary>
    private static void AppendToShellCommand(CommandLineArgsCallbackContext context, IReadOnlyList<string> args)
    {
        var command = context.Args.IndexOf("-c") + 1;
        if (command > 0 && command < context.Args.Count && context.Args[command] is string shell)
        {
            context.Args[command] = $"{shell} {string.Join(' ', args.Select(a => a.Length == 0 ? "''" : a))}";
        }
    }

    /// <summary>AUTH, then PING, over a bare socket: healthy once Redis answers PONG to an authenticated client.</summary>
    private static async Task<HealthCheckResult> PingAsync(RedisServerResource redis, CancellationToken cancellationToken)
    {
        var endpoint = redis.PrimaryEndpoint;
        if (!endpoint.IsAllocated)
        {
            return HealthCheckResult.Unhealthy("Redis has no port yet.");
        }

        try
        {
            var password = Encoding.UTF8.GetBytes(await redis.PasswordParameter.GetValueAsync(cancellationToken) ?? "");
            using var client = new TcpClient();
            await client.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"*2\r\n$4\r\nAUTH\r\n${password.Length}\r\n"), cancellationToken);
            await stream.WriteAsync(password, cancellationToken);
            await stream.WriteAsync("\r\n*1\r\n$4\r\nPING\r\n"u8.ToArray(), cancellationToken);
            using var reader = new StreamReader(stream, Encoding.ASCII);
            var auth = await reader.ReadLineAsync(cancellationToken);
            var ping = await reader.ReadLineAsync(cancellationToken);
            return auth == "+OK" && ping == "+PONG"
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy($"Redis did not answer AUTH and PING ({auth?.Split(' ')[0]}).");
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return HealthCheckResult.Unhealthy("Redis is not accepting connections.", ex);
        }
    }

    private static bool ContainerRuntimeAnswers(ConfigurationManager configuration)
    {
        var runtime = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"] ?? "docker";
        if (FindOnPath(runtime) is not { } path)
        {
            return false;
        }

        try
        {
            using var process = Process.Start(new ProcessStartInfo(path, "info --format {{.ServerVersion}}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }

            if (!process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string? FindOnPath(string command)
    {
        if (Path.IsPathRooted(command))
        {
            return File.Exists(command) ? command : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, command);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>A <c>redis-server</c> process whose connection string services receive through <c>WithReference</c>.</summary>
internal sealed class RedisServerResource(string name, string command, string workingDirectory, ParameterResource password)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public const string EndpointName = "tcp";

    public EndpointReference PrimaryEndpoint => field ??= new EndpointReference(this, EndpointName);

    public ParameterResource PasswordParameter { get; } = password;

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)},password={PasswordParameter}");
}

/// <summary>
/// <c>Redis:MaxMemory</c> (512mb) with <c>noeviction</c>, since an evicted stream key would lose a client's tokens
/// mid-stream; <c>Redis:Persistence</c>: <c>none</c> (the default: a development store in a fresh folder per run)
/// or <c>aof</c> (an append-only file synced every second in that folder, so a Redis restart keeps the streams).
/// </summary>
internal sealed record RedisServerSettings(IReadOnlyList<string> Args)
{
    public static RedisServerSettings From(IConfiguration configuration)
    {
        var maxMemory = configuration["Redis:MaxMemory"] ?? "512mb";
        if (!System.Text.RegularExpressions.Regex.IsMatch(maxMemory, "^[0-9]+(b|kb|mb|gb)?$", System.Text.RegularExpressions.RegexOptions.IgnoreCase))
        {
            throw new InvalidOperationException($"Redis:MaxMemory must be a size such as 512mb (was '{maxMemory}').");
        }

        List<string> args = ["--maxmemory", maxMemory, "--maxmemory-policy", "noeviction", "--save", ""];
        args.AddRange((configuration["Redis:Persistence"] ?? "none").ToLowerInvariant() switch
        {
            "none" => ["--appendonly", "no"],
            "aof" => ["--appendonly", "yes", "--appendfsync", "everysec"],
            var other => throw new InvalidOperationException($"Redis:Persistence must be none or aof (was '{other}')."),
        });
        return new RedisServerSettings(args);
    }
}
