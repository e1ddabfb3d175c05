using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace VixAspire.AppHost;

/// <summary>
/// Redis as a container where a container runtime answers, else as a local <c>redis-server</c> process
/// (an executable resource on a port Aspire allocates). <c>Redis:Mode</c> (auto, container, process)
/// overrides the choice.
/// </summary>
internal static class RedisHosting
{
    public const string InstallHint =
        "VixAspire needs Redis: install redis-server (sudo apt-get install -y redis-server) or start a container runtime (Docker or Podman).";

    public static bool TryAddRedis(IDistributedApplicationBuilder builder, string name,
        [NotNullWhen(true)] out IResourceBuilder<IResourceWithConnectionString>? redis, [NotNullWhen(false)] out string? problem)
    {
        var mode = builder.Configuration["Redis:Mode"] ?? "auto";
        if (mode == "container" || (mode == "auto" && ContainerRuntimeAnswers(builder.Configuration)))
        {
            var container = builder.AddRedis(name);
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

        redis = builder.CreateResourceBuilder<IResourceWithConnectionString>(AddRedisServer(builder, name, executable).Resource);
        problem = null;
        return true;
    }

    private static IResourceBuilder<RedisServerResource> AddRedisServer(IDistributedApplicationBuilder builder, string name, string executable)
    {
        var workingDirectory = Directory.CreateTempSubdirectory("vixaspire-redis-").FullName;
        var resource = new RedisServerResource(name, executable, workingDirectory);
        var healthKey = $"{name}_ping";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthKey, ct => PingAsync(resource.PrimaryEndpoint, ct));

        return builder.AddResource(resource)
            .WithEndpoint(RedisServerResource.EndpointName, endpoint =>
            {
                endpoint.UriScheme = "tcp";
                endpoint.Transport = "tcp";
                endpoint.IsProxied = false;
            })
            .WithArgs(context =>
            {
                context.Args.Add("--port");
                context.Args.Add(resource.PrimaryEndpoint.Property(EndpointProperty.TargetPort));
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                // A development and test store: no snapshots, no append-only file.
                context.Args.Add("--save");
                context.Args.Add("");
                context.Args.Add("--appendonly");
                context.Args.Add("no");
            })
            .WithHealthCheck(healthKey);
    }

    private static async Task<HealthCheckResult> PingAsync(EndpointReference endpoint, CancellationToken cancellationToken)
    {
        if (!endpoint.IsAllocated)
        {
            return HealthCheckResult.Unhealthy("Redis has no port yet.");
        }

        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal)
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy("Redis did not answer PING.");
        }
        catch (SocketException ex)
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
internal sealed class RedisServerResource(string name, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public const string EndpointName = "tcp";

    public EndpointReference PrimaryEndpoint => field ??= new EndpointReference(this, EndpointName);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)}");
}
