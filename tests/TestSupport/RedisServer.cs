using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;
using Xunit;

namespace VixAspire.TestSupport;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, private to one fixture, so tests that run in
/// parallel never share a queue or a consumer group.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private readonly string? _password;
    private Process? _process;
    private ConnectionMultiplexer? _connection;
    private Task? _drain;

    public int Port { get; private set; }

    public RedisServer()
    {
    }

    private RedisServer(string password) => _password = password;

    /// <summary>A server that requires <paramref name="password"/> (<c>--requirepass</c>) of every client.</summary>
    public static RedisServer WithPassword(string password) => new(password);

    public string? Password => _password;

    public string ConnectionString => _password is null ? $"127.0.0.1:{Port}" : $"127.0.0.1:{Port},password={_password}";

    public IConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("Not started.");

    public IDatabase Database => Connection.GetDatabase();

    public async ValueTask InitializeAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            Port = FreePort();
            try
            {
                await LaunchAsync();
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // Another process took the port between probe and bind: try another one.
                continue;
            }

            var config = new ConfigurationOptions { EndPoints = { { IPAddress.Loopback, Port } }, AbortOnConnectFail = true, AllowAdmin = true, Password = _password };
            _connection = await ConnectionMultiplexer.ConnectAsync(config);
            return;
        }
    }

    /// <summary>Kills the server (SIGKILL): from now until <see cref="StartAgainAsync"/>, Redis is unreachable.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        if (_drain is not null)
        {
            await _drain;
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Starts a new, empty server on the same port, as a Redis restart without persistence leaves it.</summary>
    public async Task StartAgainAsync()
    {
        // The port was ours a moment ago; a few tries cover the kernel releasing it.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await LaunchAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < 20)
            {
                await Task.Delay(100);
            }
        }
    }

    private async Task LaunchAsync()
    {
        var executable = Environment.GetEnvironmentVariable("REDIS_SERVER") ?? "redis-server";
        var workingDirectory = Directory.CreateTempSubdirectory("vix-test-redis-").FullName;
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workingDirectory, "--notify-keyspace-events", "Kgtx" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_password is not null)
        {
            start.ArgumentList.Add("--requirepass");
            start.ArgumentList.Add(_password);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("redis-server is not installed: run 'apt-get install -y redis-server' (or set REDIS_SERVER).", ex);
        }

        try
        {
            await WaitUntilReadyAsync(process).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            process.Dispose();
            throw;
        }

        _process = process;
        // Keep draining redis-server's log so it never blocks on a full pipe.
        _drain = process.StandardOutput.ReadToEndAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        await KillAsync();
    }

    /// <summary>Reads the server's log until it says it accepts connections (or it exits, failing to bind).</summary>
    private static async Task WaitUntilReadyAsync(Process process)
    {
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
            {
                return;
            }
        }

        throw new InvalidOperationException("redis-server exited before it was ready (port taken?).");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
