using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace VixAspire.Gateway;

/// <summary>
/// Proxied requests that fail because of what the client sent get a 400 (or 413) in the route's format from the
/// gateway, never YARP's bare 502, which would also count against a healthy replica in the passive health check:
/// <list type="bullet">
/// <item>a header value that is not ASCII, which HttpClient refuses to send upstream: refused before forwarding.
/// Kestrel decodes header bytes as Latin-1, so that a lone byte such as 0xE9 reaches this check too rather than
/// getting Kestrel's empty 400;</item>
/// <item>a body the client did not deliver (cut off before its <c>Content-Length</c>, malformed chunks, or slower
/// than Kestrel's minimum data rate after <see cref="RequestBodyGracePeriod"/>) or over the size limit, which YARP
/// reports through <see cref="IForwarderErrorFeature"/>: answered while the response has not started.</item>
/// </list>
/// Failures of the replica itself keep YARP's 502 and 504.
/// </summary>
internal static class ClientFaults
{
    /// <summary>
    /// How long a body may arrive slower than Kestrel's 240 bytes/s: shorter than StreamApi's (Kestrel's default 5 s),
    /// so that a stalled client is cut off here, with a 400, before the replica gives up on the forwarded body.
    /// </summary>
    public static readonly TimeSpan RequestBodyGracePeriod = TimeSpan.FromSeconds(3);

    private const string LastEventId = "Last-Event-ID";

    public static IServiceCollection AddClientFaults(this IServiceCollection services) =>
        services.Configure<KestrelServerOptions>(static kestrel =>
        {
            kestrel.RequestHeaderEncodingSelector = static _ => Encoding.Latin1;
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(240, RequestBodyGracePeriod);
        });

    public static IApplicationBuilder UseClientFaults(this IApplicationBuilder app) => app.Use(static async (context, next) =>
    {
        if (!IsProxied(context))
        {
            await next(context);
            return;
        }

        var logger = context.RequestServices.GetRequiredService<ILogger<GatewayError>>();
        if (NonAsciiHeader(context.Request.Headers) is { } header)
        {
            Log.HeaderNotAscii(logger, header, context.Request.Path);
            await GatewayErrors.WriteAsync(context, header.Equals(LastEventId, StringComparison.OrdinalIgnoreCase)
                ? GatewayError.InvalidLastEventId
                : GatewayError.InvalidHeader(header));
            return;
        }

        await next(context);

        if (context.Response.HasStarted || context.GetForwarderErrorFeature() is not { } failure)
        {
            return;
        }

        var badRequest = BadRequest(failure.Exception);
        if (badRequest is { StatusCode: StatusCodes.Status413PayloadTooLarge })
        {
            context.Response.Clear();
            await RequestLimits.RefuseAsync(context);
        }
        else if (badRequest is not null || failure.Error == ForwarderError.RequestBodyClient)
        {
            Log.IncompleteBody(logger, context.Request.Path, failure.Error);
            context.Response.Clear();
            // The rest of the body will not be read: the connection cannot be reused.
            context.Response.Headers.Connection = "close";
            await GatewayErrors.WriteAsync(context, GatewayError.IncompleteBody);
        }
    });

    /// <summary>Whether the request is one of YARP's routes (not health, nor the demo page).</summary>
    public static bool IsProxied(HttpContext context) => context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>() is not null;

    private static string? NonAsciiHeader(IHeaderDictionary headers)
    {
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                if (value is not null && !Ascii.IsValid(value))
                {
                    return name;
                }
            }
        }

        return null;
    }

    /// <summary>Kestrel's verdict on the client's request (body cut off, too slow, too large), however deep YARP and HttpClient wrapped it.</summary>
    private static Microsoft.AspNetCore.Http.BadHttpRequestException? BadRequest(Exception? error) => error switch
    {
        null => null,
        Microsoft.AspNetCore.Http.BadHttpRequestException bad => bad,
        AggregateException aggregate => aggregate.InnerExceptions.Select(BadRequest).FirstOrDefault(b => b is not null),
        _ => BadRequest(error.InnerException),
    };
}
