using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.OpenAi;
using VixAspire.StreamApi.Streaming;
using VixAspire.StreamApi.WebSockets;

namespace VixAspire.StreamApi;

public static class StreamApiServiceExtensions
{
    /// <summary>Everything the API needs besides the service defaults: Redis, options, the queue and the tailer.</summary>
    public static TBuilder AddStreamApiServices<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddVixRedis();

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
        builder.Services.AddRedisRetry();
        builder.Services.AddSingleton<StreamReads>();
        builder.Services.AddSingleton<ReplicaIdentity>();
        builder.Services.AddSingleton<WakeDispatcher>();
        builder.Services.AddSingleton<TokenStreamTailer>();
        builder.Services.AddSingleton<StreamAttachments>();
        builder.Services.AddSingleton<StreamCancellation>();
        builder.Services.AddSingleton<ClientSlots>();
        builder.Services.AddSingleton<StreamStarter>();
        builder.Services.AddSingleton<StreamFollower>();
        builder.Services.AddHostedService<QueueSampler>();
        builder.Services.AddSingleton<DisconnectGraceWatcher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DisconnectGraceWatcher>());
        builder.Services.TryAddSingleton(TimeProvider.System);
        // Behind the gateway the client's address arrives in X-Forwarded-For; loopback proxies are trusted by default.
        builder.Services.Configure<ForwardedHeadersOptions>(o => o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto);
        builder.Services.AddSingleton<InferenceRequestReader>();
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IConfiguration>(ConfigureKestrel);
        return builder;
    }

    /// <summary>
    /// Kestrel's limits, defaults first and <c>Kestrel:Limits</c> over them. The gateway multiplexes its streams
    /// over HTTP/2 connections (the <c>h2</c> endpoint), 100 streams each before it opens another; connections
    /// stop below the descriptor limit, so that past it Kestrel refuses new ones rather than failing to accept.
    /// Kestrel's minimum response data rate stays: it is measured only while a write waits on a reader that does
    /// not read, never between heartbeats, and a reader that slow is cut off (its tokens wait in Redis).
    /// </summary>
    private static void ConfigureKestrel(KestrelServerOptions kestrel, IConfiguration configuration)
    {
        kestrel.Limits.Http2.MaxStreamsPerConnection = 100;
        kestrel.Limits.MaxConcurrentConnections = Math.Max(1, OpenFiles.Limit - OpenFiles.Reserve);
        configuration.GetSection("Kestrel:Limits").Bind(kestrel.Limits);
    }

    /// <summary>The API's middleware and endpoints: health, then <c>/infer</c>.</summary>
    public static WebApplication MapStreamApi(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.UseStatusCodePages();
        // Keep-alive is set per socket from Streaming:HeartbeatInterval (see InferenceWebSocketApi).
        app.UseWebSocketFrameLimit();
        app.UseWebSockets();
        app.MapDefaultEndpoints();
        app.MapInferenceApi().MapInferenceWebSocket();
        app.MapOpenAiApi();
        return app;
    }
}
