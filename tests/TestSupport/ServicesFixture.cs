using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace VixAspire.TestSupport;

/// <summary>
/// A redis-server of its own and the real services in front of it. As a class fixture, one for the class's tests;
/// as a test class's base, a fresh one for each test (xunit makes an instance per test). A derived class calls
/// <see cref="StartAsync"/> from <see cref="InitializeAsync"/> with its settings, and overrides
/// <see cref="DisposeAsync"/> to dispose anything else it starts.
/// </summary>
public abstract class ServicesFixture : IAsyncLifetime
{
    public RedisServer Redis { get; } = new();

    public RunningServices Services { get; private set; } = null!;

    public abstract ValueTask InitializeAsync();

    protected async ValueTask StartAsync(
        IReadOnlyDictionary<string, string?>? settings = null,
        int workers = 1,
        bool gateway = true,
        Action<IServiceCollection>? workerServices = null,
        Action<IServiceCollection>? apiServices = null,
        CancellationToken cancellationToken = default)
    {
        await Redis.InitializeAsync();
        Services = await RunningServices.StartAsync(Redis, settings, workers, gateway, workerServices, apiServices, cancellationToken);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (Services is not null)
        {
            await Services.DisposeAsync();
        }

        await Redis.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
