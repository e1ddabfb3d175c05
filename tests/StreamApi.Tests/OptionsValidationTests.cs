using Microsoft.Extensions.Options;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>Limits are validated when a service starts, not when the first request trips over them.</summary>
public sealed class OptionsValidationTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();

    public ValueTask InitializeAsync() => _redis.InitializeAsync();

    public ValueTask DisposeAsync() => _redis.DisposeAsync();

    [Theory]
    [InlineData("Streaming:MaxStreamBytes", "0")]
    [InlineData("Streaming:MaxTokenEventBytes", "3")]
    [InlineData("Streaming:HeartbeatInterval", "00:00:00")]
    [InlineData("Streaming:MaxDuration", "00:00:00")]
    [InlineData("Streaming:MaxConcurrentStreamsPerClient", "-1")]
    [InlineData("Inference:DefaultMaxTokens", "40000")]
    [InlineData("Worker:MaxConcurrency", "0")]
    [InlineData("Providers:Synthetic:FailAfterTokens", "-2")]
    public async Task AnInvalidLimitStopsTheServiceAtStartup(string key, string value)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?> { [key] = value },
                workers: 1, gateway: false, cancellationToken: TestContext.Current.CancellationToken);
        });

        Assert.Contains(key.Split(':')[^1], error.Message);
    }
}
