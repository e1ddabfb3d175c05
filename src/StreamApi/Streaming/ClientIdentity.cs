namespace VixAspire.StreamApi.Streaming;

/// <summary>Who a request comes from, for per-client limits: the caller's address (forwarded by the gateway).</summary>
internal static class ClientIdentity
{
    public static string Of(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } address ? $"ip:{address}" : "ip:unknown";
}
