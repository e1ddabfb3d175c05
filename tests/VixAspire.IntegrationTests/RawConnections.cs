using System.Net.Sockets;
using System.Text;

namespace VixAspire.IntegrationTests;

/// <summary>Reading a raw connection as a hand-written client does: the response head, and all until the server ends it.</summary>
internal static class RawConnections
{
    /// <summary>The status line and headers, up to and with the blank line.</summary>
    public static async Task<string> ReadHeadAsync(this NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            await stream.ReadExactlyAsync(one, cancellationToken);
            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    /// <summary>Everything the server sends until it closes the connection or resets it.</summary>
    public static async Task<byte[]> ReadUntilClosedAsync(this NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received, cancellationToken);
        }
        catch (IOException)
        {
            // Reset: what came before it is what counts.
        }

        return received.ToArray();
    }
}
