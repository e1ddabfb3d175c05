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
    private Process? _process;
    private ConnectionMultiplexer? _connection;
    private Task? _drain;

    public int Port { get; private set; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public IConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("Not started.");

    public IDatabase Database => Connection.GetDatabase();

    public async ValueTask InitializeAsync()
    {
        var executable = Environment.GetEnvironmentVariable("REDIS_SERVER") ?? "redis-server";
        for (var attempt = 0; ; attempt++)
        {
            Port = FreePort();
            var workingDirectory = Directory.CreateTempSubdirectory("vix-test-redis-").FullName;
            var start = new ProcessStartInfo(executable)
            {
                ArgumentList = { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workingDirectory, "--notify-keyspace-events", "Kgtx" },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            try
            {
                _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new InvalidOperationException("redis-server is not installed: run 'apt-get install -y redis-server' (or set REDIS_SERVER).", ex);
            }

            try
            {
                await WaitUntilReadyAsync(_process).WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // Another process took the port between probe and bind: try another one.
                _process.Dispose();
                continue;
            }

            // Keep draining redis-server's log so it never blocks on a full pipe.
            _drain = _process.StandardOutput.ReadToEndAsync();
            var config = new ConfigurationOptions { EndPoints = { { IPAddress.Loopback, Port } }, AbortOnConnectFail = true, AllowAdmin = true };
            _connection = await ConnectionMultiplexer.ConnectAsync(config);
            return;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

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
