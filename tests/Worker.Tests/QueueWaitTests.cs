using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// Requests that waited in the queue: one whose stream is about to expire keeps it for its whole run, and one whose
/// stream is already gone is dropped without calling a provider, since nobody could read what it would say.
/// </summary>
public sealed class QueueWaitTests : ServicesFixture
{
    private const string Counting = "counting";

    /// <summary>Records every prompt it is asked, and answers with tokens 25 ms apart.</summary>
    private readonly ScriptedChatClient _provider = new(ScriptedChatClient.Tokens((_, ct) => Task.Delay(TimeSpan.FromMilliseconds(25), ct)));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public override ValueTask InitializeAsync() => StartAsync(new Dictionary<string, string?>
    {
        ["Inference:Models:counting:Provider"] = Counting,
    }, workers: 0, gateway: false, workerServices: s => s.AddKeyedSingleton<IChatClient>(Counting, _provider), cancellationToken: Ct);

    [Fact]
    public async Task AStreamAboutToExpireWhenPickedUpLivesUntilItsEnd()
    {
        var id = await EnqueueAsync(Redis.Database, Request("late", 40, model: "counting"));
        // As if the request had waited in the queue for nearly its stream's whole lifetime.
        await Redis.Database.KeyExpireAsync(RedisKeys.Tokens(id), TimeSpan.FromMilliseconds(500));

        await StartWorkerAsync();
        var entries = await WaitForEndAsync(Redis.Connection, id, Ct);

        Assert.Equal(40, entries.Count(e => EventOf(e) == EventNames.Token));
        Assert.Equal(EndReasons.Length, PayloadOf(entries[^1]).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task ARequestWhoseStreamIsGoneIsDroppedWithoutCallingAProvider()
    {
        var gone = await EnqueueAsync(Redis.Database, Request("gone", 5, model: "counting"));
        await Redis.Database.KeyDeleteAsync(RedisKeys.Tokens(gone));
        var next = await EnqueueAsync(Redis.Database, Request("next", 5, model: "counting"));

        await StartWorkerAsync();
        // The queue is served in order: once the next request ends, the one before it was handled.
        await WaitForEndAsync(Redis.Connection, next, Ct);
        await WaitUntilDequeuedAsync(Redis.Connection, gone, Ct);

        Assert.Equal(["next"], _provider.Prompts);
        Assert.False(await Redis.Database.KeyExistsAsync(RedisKeys.Tokens(gone)));
    }

    private async Task StartWorkerAsync() => await Services.StartWorkerAsync(new Dictionary<string, string?>
    {
        ["ConnectionStrings:redis"] = Redis.ConnectionString,
        ["Inference:Models:counting:Provider"] = Counting,
    }, Ct);
}
