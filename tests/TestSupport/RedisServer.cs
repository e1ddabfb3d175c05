using System.Net;
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
    private RedisProcess? _process;
    private ConnectionMultiplexer? _connection;

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
            Port = RedisProcess.FreePort();
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
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
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
        List<string> arguments = ["--notify-keyspace-events", "Kgtx"];
        if (_password is not null)
        {
            arguments.AddRange(["--requirepass", _password]);
        }

        _process = await RedisProcess.StartAsync(Port, arguments);
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        await KillAsync();
    }
}
