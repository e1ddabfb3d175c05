using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi;

public static class StreamApiServiceExtensions
{
    /// <summary>Everything the API needs besides the service defaults: Redis, options, the queue and the tailer.</summary>
    public static TBuilder AddStreamApiServices<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddRedisClient("redis");

        builder.Services.AddOptions<StreamingOptions>()
            .BindConfiguration(StreamingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<ModelCatalogOptions>()
            .BindConfiguration(ModelCatalogOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddProblemDetails();
        builder.Services.AddSingleton<StreamApiTelemetry>();
        builder.Services.AddSingleton<RequestQueue>();
        builder.Services.AddSingleton<TokenStreamTailer>();
        builder.Services.AddSingleton<InferenceRequestReader>();
        return builder;
    }

    /// <summary>The API's middleware and endpoints: health, then <c>/infer</c>.</summary>
    public static WebApplication MapStreamApi(this WebApplication app)
    {
        app.UseStatusCodePages();
        app.MapDefaultEndpoints();
        app.MapInferenceApi();
        return app;
    }
}
