using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Who a request comes from (<see cref="ClientIdentityHeader"/>): the API key's name when the gateway checks keys,
/// else the caller's address (forwarded by the gateway). The header is the gateway's to set, and it drops one a
/// client sends, so StreamApi must be reachable only through the gateway.
/// </summary>
/// <param name="Id">The client for per-client limits: <c>key:{name}</c> or <c>ip:{address}</c>.</param>
/// <param name="Key">The API key's name when keys are configured: it owns the streams it creates, and only it may read or cancel them.</param>
internal readonly record struct ClientIdentity(string Id, string? Key)
{
    public static ClientIdentity Of(HttpContext context) =>
        context.Request.Headers[ClientIdentityHeader.Name].ToString() is { Length: > 0 } key
            ? new(ClientIdentityHeader.ForKey(key), key)
            : new(ClientIdentityHeader.ForAddress(context.Connection.RemoteIpAddress), null);
}
