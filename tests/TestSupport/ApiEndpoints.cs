using System.Net;
using System.Net.Sockets;

namespace VixAspire.TestSupport;

/// <summary>
/// StreamApi's endpoints as the AppHost gives them, in Kestrel's configuration: HTTP/1.1 (<c>http</c>, for clients
/// and tests) on a port Kestrel picks, and cleartext HTTP/2 (<c>h2</c>, for the gateway) on a free port chosen
/// here, so that the caller knows which address is which.
/// </summary>
public static class ApiEndpoints
{
    private const string Http2UrlKey = "Kestrel:Endpoints:h2:Url";

    public static Dictionary<string, string?> Settings()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        return new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:http:Url"] = "http://127.0.0.1:0",
            [Http2UrlKey] = $"http://127.0.0.1:{port}",
            ["Kestrel:Endpoints:h2:Protocols"] = "Http2",
        };
    }

    /// <summary>The HTTP/2 endpoint of <paramref name="settings"/>, if they give one.</summary>
    public static Uri? Http2Address(IReadOnlyDictionary<string, string?> settings) =>
        settings.TryGetValue(Http2UrlKey, out var url) && url is not null ? new Uri(url) : null;

    /// <summary>The gateway's destinations: <paramref name="http1"/> for its HTTP/1.1 cluster, <paramref name="http2"/> for its HTTP/2 one.</summary>
    public static Dictionary<string, string?> GatewayDestinations(string destination, Uri http1, Uri? http2)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"ReverseProxy:Clusters:streamapi:Destinations:{destination}:Address"] = http1.ToString(),
        };
        if (http2 is not null)
        {
            settings[$"ReverseProxy:Clusters:streamapi_h2:Destinations:{destination}:Address"] = http2.ToString();
        }

        return settings;
    }
}
