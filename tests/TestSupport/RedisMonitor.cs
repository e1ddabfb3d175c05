using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace VixAspire.TestSupport;

/// <summary>
/// Redis's <c>MONITOR</c> on a socket of its own: every command the server runs while it is open, with who sent it.
/// Commands a script runs are marked as such, so a test can count what clients send (round trips), which
/// <c>INFO commandstats</c> cannot tell apart.
/// </summary>
public sealed partial class RedisMonitor : IAsyncDisposable
{
    private readonly TcpClient _client = new();
    private readonly StringBuilder _seen = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _reading = Task.CompletedTask;

    /// <summary>One command as MONITOR echoes it: its name (upper case) and its arguments.</summary>
    public sealed record Command(bool FromScript, string Name, IReadOnlyList<string> Arguments);

    public static async Task<RedisMonitor> StartAsync(RedisServer redis, CancellationToken cancellationToken)
    {
        var monitor = new RedisMonitor();
        await monitor._client.ConnectAsync(IPAddress.Loopback, redis.Port, cancellationToken);
        var stream = monitor._client.GetStream();
        var hello = redis.Password is { } password ? $"AUTH {password}\r\nMONITOR\r\n" : "MONITOR\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(hello), cancellationToken);
        // MONITOR answers +OK once it is on (after AUTH's +OK): from then on every command is seen.
        var expected = redis.Password is null ? 1 : 2;
        var buffer = new byte[4096];
        var text = new StringBuilder();
        while (Regex.Count(text.ToString(), @"^\+OK\r\n", RegexOptions.Multiline) < expected)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                throw new InvalidOperationException($"MONITOR was refused: {text}");
            }

            text.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        monitor._seen.Append(text);
        monitor._reading = monitor.ReadAsync(stream);
        return monitor;
    }

    /// <summary>The commands seen so far that clients sent (not those scripts ran), oldest first.</summary>
    public IReadOnlyList<Command> Sent() => [.. All().Where(c => !c.FromScript)];

    /// <summary>Every command seen so far, oldest first.</summary>
    public IReadOnlyList<Command> All()
    {
        string text;
        lock (_seen)
        {
            text = _seen.ToString();
        }

        var commands = new List<Command>();
        foreach (Match line in Line().Matches(text))
        {
            var arguments = Argument().Matches(line.Groups["args"].Value).Select(a => Regex.Unescape(a.Groups[1].Value)).ToList();
            if (arguments.Count > 0)
            {
                commands.Add(new(line.Groups["from"].Value == "lua", arguments[0].ToUpperInvariant(), arguments[1..]));
            }
        }

        return commands;
    }

    private async Task ReadAsync(NetworkStream stream)
    {
        var buffer = new byte[1 << 16];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, _stop.Token)) > 0)
            {
                lock (_seen)
                {
                    _seen.Append(Encoding.UTF8.GetString(buffer, 0, read));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _client.Dispose();
        await _reading;
        _stop.Dispose();
    }

    // `+<time> [<db> <address, or lua>] "<COMMAND>" "<arg>" ...`
    [GeneratedRegex(@"^\+\d+\.\d+ \[\d+ (?<from>[^\]]+)\] (?<args>.*)\r$", RegexOptions.Multiline)]
    private static partial Regex Line();

    [GeneratedRegex(@"""((?:[^""\\]|\\.)*)""")]
    private static partial Regex Argument();
}
