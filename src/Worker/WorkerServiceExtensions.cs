using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;
using VixAspire.Worker.Providers;
using VixAspire.Worker.Queue;

namespace VixAspire.Worker;

public static class WorkerServiceExtensions
{
    /// <summary>Redis, options, the providers of the routing table (synthetic and OpenAI-compatible) and the queue consumer.</summary>
    public static TBuilder AddWorkerServices<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddVixRedis();

        AddValidatedOptions<StreamingOptions>(builder.Services, StreamingOptions.SectionName);
        AddValidatedOptions<ModelCatalogOptions>(builder.Services, ModelCatalogOptions.SectionName);
        AddValidatedOptions<WorkerOptions>(builder.Services, WorkerOptions.SectionName);
        AddValidatedOptions<SyntheticProviderOptions>(builder.Services, SyntheticProviderOptions.SectionName);
        AddValidatedOptions<ProviderResilienceOptions>(builder.Services, ProviderResilienceOptions.SectionName);

        builder.Services.TryAddSingletonTimeProvider();
        AddSynthetic(builder.Services, ProviderNames.Synthetic, SyntheticBehavior.Normal);
        AddSynthetic(builder.Services, ProviderNames.SyntheticStall, SyntheticBehavior.Stall);
        AddSynthetic(builder.Services, ProviderNames.SyntheticFail, SyntheticBehavior.Fail);
        AddSynthetic(builder.Services, ProviderNames.SyntheticReasoning, SyntheticBehavior.Reasoning);
        builder.Services.AddOpenAiProviders(builder.Configuration);

        builder.Services.AddSingleton<WorkerTelemetry>();
        builder.Services.AddSingleton<ProviderPipelines>();
        builder.Services.AddSingleton<ProviderCatalog>();
        builder.Services.AddSingleton<ProviderLimits>();
        builder.Services.AddSingleton<ProviderRouter>();
        builder.Services.AddSingleton<CancellationRegistry>();
        builder.Services.AddSingleton<RedisWriteRetry>();
        builder.Services.AddSingleton<StreamFlusher>();
        builder.Services.AddSingleton<EntrySettler>();
        builder.Services.AddSingleton<GenerationRunner>();
        builder.Services.AddSingleton<ConsumerGroup>();
        builder.Services.AddSingleton<QueueClaims>();
        builder.Services.AddSingleton<RequestRuns>();
        builder.Services.AddHostedService<RequestConsumer>();
        return builder;
    }

    private static void AddSynthetic(IServiceCollection services, string name, SyntheticBehavior behavior) =>
        services.AddKeyedSingleton<IChatClient>(name, (sp, _) => new ChatClientBuilder(
                new SyntheticChatClient(behavior, sp.GetRequiredService<IOptionsMonitor<SyntheticProviderOptions>>(), sp.GetRequiredService<TimeProvider>()))
            .UseOpenTelemetry(sourceName: TelemetrySources.Worker)
            .Build(sp));

    private static void AddValidatedOptions<T>(IServiceCollection services, string section) where T : class =>
        services.AddOptions<T>().BindConfiguration(section).ValidateDataAnnotations().ValidateOnStart();

    private static void TryAddSingletonTimeProvider(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider)))
        {
            services.AddSingleton(TimeProvider.System);
        }
    }
}
