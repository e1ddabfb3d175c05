using System.Security.Claims;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace VixAspire.Gateway;

/// <summary>
/// Tells StreamApi who the client is: <c>X-Vix-Client</c> carries the name of the request's API key, and only the
/// gateway sets it. Whatever a client sent under that name is removed on every route, so that no client can
/// choose its identity; with keys off the header is absent and the API goes by the forwarded address.
/// </summary>
internal static class ClientIdentity
{
    public const string Header = "X-Vix-Client";

    public static string? Name(ClaimsPrincipal user) =>
        user.Identities.FirstOrDefault(i => i.AuthenticationType == ApiKeyHandler.SchemeName && i.IsAuthenticated)?.Name;

    public static TransformBuilderContext AddClientIdentity(this TransformBuilderContext context) =>
        context.AddRequestTransform(static transform =>
        {
            RequestTransform.RemoveHeader(transform, Header);
            if (Name(transform.HttpContext.User) is { } name)
            {
                transform.ProxyRequest.Headers.TryAddWithoutValidation(Header, name);
            }

            return ValueTask.CompletedTask;
        });
}
