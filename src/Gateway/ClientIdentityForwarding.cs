using System.Security.Claims;
using VixAspire.Contracts;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace VixAspire.Gateway;

/// <summary>
/// Tells StreamApi who the client is (<see cref="ClientIdentityHeader"/>): the name of the request's API key, set
/// only here. Whatever a client sent under that header is removed on every route, so that no client can choose its
/// identity; with keys off the header is absent and the API goes by the forwarded address.
/// </summary>
internal static class ClientIdentityForwarding
{
    public static string? KeyName(ClaimsPrincipal user) =>
        user.Identities.FirstOrDefault(i => i.AuthenticationType == ApiKeyHandler.SchemeName && i.IsAuthenticated)?.Name;

    /// <summary>The client as StreamApi will count it: the key's name when the request carries a valid key, else its address.</summary>
    public static string ClientId(HttpContext context) =>
        KeyName(context.User) is { } name ? ClientIdentityHeader.ForKey(name) : ClientIdentityHeader.ForAddress(context.Connection.RemoteIpAddress);

    public static TransformBuilderContext AddClientIdentity(this TransformBuilderContext context) =>
        context.AddRequestTransform(static transform =>
        {
            RequestTransform.RemoveHeader(transform, ClientIdentityHeader.Name);
            if (KeyName(transform.HttpContext.User) is { } name)
            {
                transform.ProxyRequest.Headers.TryAddWithoutValidation(ClientIdentityHeader.Name, name);
            }

            return ValueTask.CompletedTask;
        });
}
