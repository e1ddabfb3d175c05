using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

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
    /// A 413 problem for a body that declares a <c>Content-Length</c> over the limit, before the proxy reads anything.
    /// A chunked body trips Kestrel's limit while YARP streams it upstream: <see cref="ClientFaults"/> answers that one.
    /// </summary>
    public static IApplicationBuilder UseRequestLimits(this IApplicationBuilder app) => app.Use(static async (context, next) =>
    {
        if (context.Request.ContentLength > Limit(context))
        {
            await RefuseAsync(context);
            return;
        }

        await next(context);
    });

    public static Task RefuseAsync(HttpContext context)
    {
        var limit = Limit(context);
        var logger = context.RequestServices.GetRequiredService<ILogger<RequestLimitsOptions>>();
        Log.BodyTooLarge(logger, limit, context.Request.Path);
        // Nothing more of this body will be read: the connection cannot be reused.
        context.Response.Headers.Connection = "close";
        return GatewayErrors.WriteAsync(context, GatewayError.TooLarge(limit));
    }

    private static long Limit(HttpContext context) =>
        context.RequestServices.GetRequiredService<IOptions<RequestLimitsOptions>>().Value.MaxRequestBodyBytes;
}
