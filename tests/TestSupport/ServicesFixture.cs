using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace VixAspire.TestSupport;

/// <summary>
/// A class fixture with its own redis-server and the real services in front of it. A derived fixture calls
/// <see cref="StartAsync"/> from <see cref="InitializeAsync"/> with its settings.
/// </summary>
public abstract class ServicesFixture : IAsyncLifetime
{
    public RedisServer Redis { get; } = new();

    public RunningServices Services { get; private set; } = null!;

    public abstract ValueTask InitializeAsync();

    protected async Task StartAsync(
        IReadOnlyDictionary<string, string?>? settings = null,
        int workers = 1,
        bool gateway = true,
        Action<IServiceCollection>? workerServices = null,
        Action<IServiceCollection>? apiServices = null)
    {
        await Redis.InitializeAsync();
        Services = await RunningServices.StartAsync(Redis, settings, workers, gateway, workerServices, apiServices);
    }

    public async ValueTask DisposeAsync()
    {
        if (Services is not null)
        {
            await Services.DisposeAsync();
        }

        await Redis.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
