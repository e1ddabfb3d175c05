using System.Globalization;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// How many file descriptors this process may hold (RLIMIT_NOFILE; .NET raises the soft limit to the hard one
/// at start). Every socket is one, so it bounds the connections a service can hold; the services size their
/// connection and stream limits below it, so that past capacity they refuse instead of failing to accept.
/// </summary>
public static class OpenFiles
{
    /// <summary>Assumed where the limit cannot be read (not Linux): the hard limit of our Linux hosts.</summary>
    public const int Fallback = 20_000;

    /// <summary>Descriptors kept for what is not a client connection: assemblies, Redis, epoll, logs, telemetry.</summary>
    public const int Reserve = 1_000;

    public static int Limit { get; } = Read() ?? Fallback;

    private static int? Read()
    {
        try
        {
            // "Max open files            20000                20000                files"
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 3 } && int.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
