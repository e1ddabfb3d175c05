using Microsoft.Extensions.FileProviders;

namespace VixAspire.Gateway;

/// <summary>
/// The demo page at <c>/</c>: plain HTML, CSS and JavaScript from <c>wwwroot</c>, embedded in the assembly so
/// the gateway finds it wherever it runs (published, in a container, or hosted by a test with another
/// content root). Served before the proxy; its paths never overlap the proxied routes.
/// </summary>
public static class DemoPage
{
    private static readonly IFileProvider Files =
        new EmbeddedFileProvider(typeof(DemoPage).Assembly, $"{typeof(DemoPage).Namespace}.wwwroot");

    public static WebApplication UseDemoPage(this WebApplication app)
    {
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = Files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = Files,
            OnPrepareResponse = static context =>
            {
                var headers = context.Context.Response.Headers;
                // Revalidate each load, so a new deployment's page is never mixed with a cached script.
                headers.CacheControl = "no-cache";
                headers.XContentTypeOptions = "nosniff";
                // Nothing is fetched from anywhere but this origin.
                headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
            },
        });
        return app;
    }
}
