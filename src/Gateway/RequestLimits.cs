using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace VixAspire.Gateway;

/// <summary>Kestrel's limits at the public door, so that an oversize request never reaches a replica.</summary>
public sealed class RequestLimitsOptions
{
    public const string SectionName = "Gateway";

    [Range(1, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    [Range(1024, 1024 * 1024)]
    public int MaxRequestHeadersTotalSize { get; set; } = 32 * 1024;

    [Range(1, 1000)]
    public int MaxRequestHeaderCount { get; set; } = 100;
}

internal static class RequestLimits
{
    public static IServiceCollection AddRequestLimits(this IServiceCollection services)
    {
        services.AddOptions<RequestLimitsOptions>().BindConfiguration(RequestLimitsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        // Too many or too large headers: Kestrel answers 431 itself, before any middleware runs.
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<RequestLimitsOptions>>((kestrel, limits) =>
        {
            kestrel.Limits.MaxRequestBodySize = limits.Value.MaxRequestBodyBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = limits.Value.MaxRequestHeadersTotalSize;
            kestrel.Limits.MaxRequestHeaderCount = limits.Value.MaxRequestHeaderCount;
        });
        return services;
    }

    /// <summary>
    /// A 413 problem for a body over the limit. A declared <c>Content-Length</c> is refused before the proxy reads
    /// anything; a chunked body trips Kestrel's limit while YARP streams it upstream, which YARP reports as a
    /// client body error (a bare 400): that becomes the same 413 while the response has not started.
    /// </summary>
    public static IApplicationBuilder UseRequestLimits(this IApplicationBuilder app) => app.Use(static async (context, next) =>
    {
        var limit = context.RequestServices.GetRequiredService<IOptions<RequestLimitsOptions>>().Value.MaxRequestBodyBytes;
        if (context.Request.ContentLength > limit)
        {
            await RefuseAsync(context, limit);
            return;
        }

        await next(context);

        if (!context.Response.HasStarted
            && context.GetForwarderErrorFeature() is { Error: ForwarderError.RequestBodyClient, Exception: { } error }
            && IsBodyTooLarge(error))
        {
            context.Response.Clear();
            await RefuseAsync(context, limit);
        }
    });

    private static Task RefuseAsync(HttpContext context, long limit)
    {
        var logger = context.RequestServices.GetRequiredService<ILogger<RequestLimitsOptions>>();
        Log.BodyTooLarge(logger, limit, context.Request.Path);
        // Nothing more of this body will be read: the connection cannot be reused.
        context.Response.Headers.Connection = "close";
        return GatewayErrors.WriteAsync(context, GatewayError.TooLarge(limit));
    }

    /// <summary>Kestrel's 413, however deep YARP and HttpClient wrapped it.</summary>
    private static bool IsBodyTooLarge(Exception? error) => error switch
    {
        null => false,
        Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsBodyTooLarge),
        _ => IsBodyTooLarge(error.InnerException),
    };
}
