using System.Runtime.CompilerServices;
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
public sealed class QueueWaitTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private readonly CountingChatClient _provider = new();
    private RunningServices _services = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?>
        {
            ["Inference:Models:counting:Provider"] = CountingChatClient.Name,
        }, workers: 0, gateway: false, workerServices: s => s.AddKeyedSingleton<IChatClient>(CountingChatClient.Name, _provider), cancellationToken: Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task AStreamAboutToExpireWhenPickedUpLivesUntilItsEnd()
    {
        var id = await EnqueueAsync(_redis.Database, Request("late", 40, model: "counting"));
        // As if the request had waited in the queue for nearly its stream's whole lifetime.
        await _redis.Database.KeyExpireAsync(RedisKeys.Tokens(id), TimeSpan.FromMilliseconds(500));

        await StartWorkerAsync();
        var entries = await WaitForEndAsync(_redis.Connection, id, Ct);

        Assert.Equal(40, entries.Count(e => EventOf(e) == EventNames.Token));
        Assert.Equal(EndReasons.Length, PayloadOf(entries[^1]).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task ARequestWhoseStreamIsGoneIsDroppedWithoutCallingAProvider()
    {
        var gone = await EnqueueAsync(_redis.Database, Request("gone", 5, model: "counting"));
        await _redis.Database.KeyDeleteAsync(RedisKeys.Tokens(gone));
        var next = await EnqueueAsync(_redis.Database, Request("next", 5, model: "counting"));

        await StartWorkerAsync();
        // The queue is served in order: once the next request ends, the one before it was handled.
        await WaitForEndAsync(_redis.Connection, next, Ct);
        await WaitUntilDequeuedAsync(_redis.Connection, gone, Ct);

        Assert.Equal(["next"], _provider.Prompts);
        Assert.False(await _redis.Database.KeyExistsAsync(RedisKeys.Tokens(gone)));
    }

    private async Task StartWorkerAsync() => await _services.StartWorkerAsync(new Dictionary<string, string?>
    {
        ["ConnectionStrings:redis"] = _redis.ConnectionString,
        ["Inference:Models:counting:Provider"] = CountingChatClient.Name,
    }, Ct);

    /// <summary>Records every prompt it is asked, and answers with tokens 50 ms apart.</summary>
    private sealed class CountingChatClient : IChatClient
    {
        public const string Name = "counting";

        private readonly List<string> _prompts = [];

        public IReadOnlyList<string> Prompts
        {
            get
            {
                lock (_prompts)
                {
                    return [.. _prompts];
                }
            }
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            lock (_prompts)
            {
                _prompts.Add(messages.Last().Text);
            }

            for (var i = 0; i < options!.MaxOutputTokens; i++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(25), cancellationToken);
                yield return new ChatResponseUpdate(ChatRole.Assistant, $" t{i}");
            }
        }

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
