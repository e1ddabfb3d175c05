using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;
using VixAspire.Contracts;

namespace VixAspire.Worker.Providers;

/// <summary>Registers every upstream under <c>Providers:OpenAI</c> as a keyed <see cref="IChatClient"/> named after it.</summary>
internal static class OpenAiProviders
{
    // Servers that need no key (Ollama, llama.cpp, a bare vLLM) accept any bearer token; the client library needs one.
    private const string PlaceholderKey = "unused";

    public static void AddOpenAiProviders(this IServiceCollection services, IConfiguration configuration)
    {
        var names = configuration.GetSection(OpenAiUpstreamOptions.SectionName).GetChildren().Select(s => s.Key).ToList();
        services.AddSingleton(new OpenAiUpstreamNames(names));
        foreach (var name in names)
        {
            if (name is ProviderNames.Synthetic or ProviderNames.SyntheticStall or ProviderNames.SyntheticFail or ProviderNames.SyntheticReasoning)
            {
                throw new InvalidOperationException($"'{OpenAiUpstreamOptions.SectionName}:{name}' reuses the name of a built-in provider.");
            }

            services.AddOptions<OpenAiUpstreamOptions>(name)
                .BindConfiguration($"{OpenAiUpstreamOptions.SectionName}:{name}")
                .ValidateDataAnnotations()
                .ValidateOnStart();

            // An HttpClient of our own rather than one from the factory: the service defaults give factory clients a
            // standard resilience handler whose retries and total timeout would fight the worker's own, which must
            // stop retrying once a token has been sent.
            services.AddKeyedSingleton(name, (_, _) => new HttpClient(new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            {
                Timeout = Timeout.InfiniteTimeSpan,
            });

            services.AddKeyedSingleton<IChatClient>(name, (sp, key) =>
            {
                var upstream = sp.GetRequiredService<IOptionsMonitor<OpenAiUpstreamOptions>>().Get(name);
                var client = new OpenAIClient(
                    new ApiKeyCredential(string.IsNullOrEmpty(upstream.ApiKey) ? PlaceholderKey : upstream.ApiKey),
                    new OpenAIClientOptions
                    {
                        Endpoint = upstream.Endpoint,
                        Transport = new HttpClientPipelineTransport(sp.GetRequiredKeyedService<HttpClient>(key)),
                        // Retries belong to the worker, which knows whether a token has been sent.
                        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
                    });
                return new ChatClientBuilder(client.GetChatClient(upstream.Model).AsIChatClient())
                    .UseOpenTelemetry(sourceName: TelemetrySources.Worker)
                    .Use(inner => new DeclaredToolsChatClient(inner))
                    .Build(sp);
            });
        }
    }
}
