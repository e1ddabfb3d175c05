using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace VixAspire.TestSupport;

/// <summary>
/// One <c>redis-server</c> process on loopback, without persistence, in a temporary directory of its own: the
/// launcher shared by <see cref="RedisServer"/> and <see cref="RedisCluster"/>.
/// </summary>
public sealed class RedisProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Task _drain;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        // Keep draining redis-server's log so it never blocks on a full pipe.
        _drain = process.StandardOutput.ReadToEndAsync();
    }

    public int Port { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts redis-server on <paramref name="port"/> with <paramref name="arguments"/> besides the common ones, and
    /// returns once it accepts connections. Throws <see cref="InvalidOperationException"/> when it exits first (a
    /// port taken meanwhile, say), so that the caller can try other ports.
    /// </summary>
    public static async Task<RedisProcess> StartAsync(int port, IEnumerable<string> arguments)
    {
        var executable = Environment.GetEnvironmentVariable("REDIS_SERVER") ?? "redis-server";
        var workingDirectory = Directory.CreateTempSubdirectory("vix-test-redis-").FullName;
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workingDirectory },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
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

        return new RedisProcess(process, port);
    }

    /// <summary>SIGKILL, and wait until the process is gone.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        await _drain;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    /// <summary>A port free on loopback right now (another process may take it before it is bound).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
}
