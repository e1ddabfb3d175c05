using System.Net;

namespace VixAspire.Contracts;

/// <summary>
/// Who a client is, as the gateway and StreamApi agree on it. The gateway sends the name of the request's API key
/// in <see cref="Name"/> and removes any such header a client sent; StreamApi reads it, and without it goes by the
/// forwarded address. Per-client limits (the gateway's rate limits, StreamApi's concurrency in
/// <see cref="RedisKeys.ClientStreams"/>) count a client as <c>key:{name}</c> or <c>ip:{address}</c>.
/// </summary>
public static class ClientIdentityHeader
{
    public const string Name = "X-Vix-Client";

    public static string ForKey(string keyName) => $"key:{keyName}";

    public static string ForAddress(IPAddress? address) => address is null ? "ip:unknown" : $"ip:{address}";
}
