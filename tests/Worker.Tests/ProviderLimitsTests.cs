using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

/// <summary>Each OpenAI-compatible upstream has its own concurrency figure; the synthetic provider has none.</summary>
public sealed class ProviderLimitsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ProviderLimits Limits(int upstreamLimit) =>
        new(new FixedOptionsMonitor<OpenAiUpstreamOptions>(new OpenAiUpstreamOptions { MaxConcurrency = upstreamLimit }), new OpenAiUpstreamNames(["gpu"]));

    [Fact]
    public async Task AnUpstreamAtItsLimitQueuesTheNextGenerationUntilASlotIsFreed()
    {
        using var limits = Limits(upstreamLimit: 2);
        using var first = await limits.AcquireAsync("gpu", Ct);
        var second = await limits.AcquireAsync("gpu", Ct);

        var third = limits.AcquireAsync("gpu", Ct).AsTask();
        Assert.False(third.IsCompleted);

        second!.Dispose();
        using var acquired = await third.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(acquired!.IsAcquired);
        Assert.True(first!.IsAcquired);
    }

    [Fact]
    public async Task TheSyntheticProviderHasNoLimitOfItsOwn()
    {
        using var limits = Limits(upstreamLimit: 1);
        for (var i = 0; i < 10_000; i++)
        {
            Assert.Null(await limits.AcquireAsync(ProviderNames.Synthetic, Ct));
        }
    }

    [Fact]
    public async Task AnOpenStreamHoldsItsUpstreamSlotUntilItIsDisposed()
    {
        using var limits = Limits(upstreamLimit: 1);
        var upstream = new ScriptedChatClient();
        await using var pipelines = new ProviderPipelines(new FixedOptionsMonitor<ProviderResilienceOptions>(new ProviderResilienceOptions { MaxRetries = 0 }),
            new OpenAiUpstreamNames(["gpu"]), TimeProvider.System, NullLoggerFactory.Instance);
        var router = new ProviderRouter(pipelines, limits, NullLogger<ProviderRouter>.Instance);
        ProviderCandidate[] candidates = [new("model", "gpu", upstream, null, null)];
        ChatMessage[] messages = [new(ChatRole.User, "hello")];

        var first = await router.OpenAsync("first", candidates, messages, new ChatOptions(), Ct);
        var second = router.OpenAsync("second", candidates, messages, new ChatOptions(), Ct);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, upstream.Calls);

        await first.DisposeAsync();
        await using var opened = await second.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(2, upstream.Calls);
    }
}
