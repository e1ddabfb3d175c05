using System.Globalization;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The machine's TCP sockets and the programs holding them, read from /proc as <c>ss -tnp</c> reads them:
/// who listens on a port, and who holds a connection to it.
/// </summary>
internal static class TcpSockets
{
    public sealed record Socket(int LocalPort, int RemotePort, bool Listening, bool Established, string? Program);

    public static IReadOnlyList<Socket> Read()
    {
        var programs = ProgramsBySocketInode();
        var sockets = new List<Socket>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var inode = long.Parse(fields[9], CultureInfo.InvariantCulture);
                sockets.Add(new Socket(Port(fields[1]), Port(fields[2]), fields[3] == "0A", fields[3] == "01", programs.GetValueOrDefault(inode)));
            }
        }

        return sockets;
    }

    /// <summary>The programs (file names, as in <c>ps</c>) that listen on <paramref name="port"/>.</summary>
    public static string[] ListenersOn(this IReadOnlyList<Socket> sockets, int port) =>
        [.. sockets.Where(s => s.Listening && s.LocalPort == port).Select(s => s.Program ?? "(not ours to see)").Distinct()];

    private static int Port(string hexAddressAndPort) =>
        int.Parse(hexAddressAndPort.AsSpan(hexAddressAndPort.IndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static Dictionary<long, string> ProgramsBySocketInode()
    {
        var programs = new Dictionary<long, string>();
        foreach (var process in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(process), out _))
            {
                continue;
            }

            try
            {
                var program = Path.GetFileName(File.ReadAllText(Path.Combine(process, "cmdline")).Split('\0')[0]);
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")))
                {
                    if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                    {
                        programs[long.Parse(target.AsSpan(8, target.Length - 9), CultureInfo.InvariantCulture)] = program;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked, or is not ours to read.
            }
        }

        return programs;
    }
}
