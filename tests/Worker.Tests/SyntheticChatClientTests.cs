using Microsoft.Extensions.AI;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

public class SyntheticChatClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SyntheticChatClient Client(SyntheticBehavior behavior, int failAfter = 3) => new(behavior,
        new FixedOptionsMonitor<SyntheticProviderOptions>(new() { FirstTokenDelay = TimeSpan.Zero, TokenDelay = TimeSpan.Zero, FailAfterTokens = failAfter }),
        TimeProvider.System);

    private static async Task<List<ChatResponseUpdate>> CollectAsync(SyntheticChatClient client, string prompt, int maxTokens)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, prompt)], new ChatOptions { MaxOutputTokens = maxTokens }, Ct))
        {
            updates.Add(update);
        }

        return updates;
    }

    [Fact]
    public async Task TheSamePromptGivesTheSameTextAndAnotherPromptAnotherText()
    {
        var first = await CollectAsync(Client(SyntheticBehavior.Normal), "hello", 20);
        var again = await CollectAsync(Client(SyntheticBehavior.Normal), "hello", 20);
        var other = await CollectAsync(Client(SyntheticBehavior.Normal), "goodbye", 20);

        Assert.Equal(first.Select(u => u.Text), again.Select(u => u.Text));
        Assert.NotEqual(first.Select(u => u.Text), other.Select(u => u.Text));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(500)]
    public async Task ItYieldsMaxTokensTokensAndFinishesWithLength(int maxTokens)
    {
        var updates = await CollectAsync(Client(SyntheticBehavior.Normal), "count", maxTokens);

        Assert.Equal(maxTokens, updates.Count);
        Assert.All(updates, u => Assert.False(string.IsNullOrEmpty(u.Text)));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.FinishReason));
    }

    [Fact]
    public async Task FailYieldsAFewTokensThenThrows()
    {
        var seen = new List<string>();
        var client = Client(SyntheticBehavior.Fail, failAfter: 3);

        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], new ChatOptions { MaxOutputTokens = 10 }, Ct))
            {
                seen.Add(update.Text);
            }
        });
        Assert.Equal(3, seen.Count);
    }

    [Fact]
    public async Task StallNeverYieldsAndHonoursCancellation()
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var client = Client(SyntheticBehavior.Stall);
        var enumerator = client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], null, cancel.Token).GetAsyncEnumerator(cancel.Token);

        var next = enumerator.MoveNextAsync().AsTask();
        Assert.False(next.IsCompleted);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next.WaitAsync(TimeSpan.FromSeconds(5), Ct));
    }
}
