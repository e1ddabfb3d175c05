using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// One generation writes a stream at a time: a worker that stalled long enough to be taken for dead, then wakes
/// up, cannot write into the stream that another worker took over, nor after its end.
/// </summary>
public sealed class FencingTests : IAsyncLifetime
{
    private const int Tokens = 10;

    private readonly RedisServer _redis = new();
    private readonly StallingChatClient _provider = new();
    private RunningServices _services = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?>
        {
            ["Inference:Models:stalling:Provider"] = StallingChatClient.Name,
        }, workers: 0, gateway: false, workerServices: s => s.AddKeyedSingleton<IChatClient>(StallingChatClient.Name, _provider), cancellationToken: Ct);
    }

    public async ValueTask DisposeAsync()
    {
        _provider.Release();
        await _services.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Theory]
    [InlineData(3)]
    [InlineData(0)]
    public async Task AStalledWorkerThatWakesAfterATakeoverWritesNothingMore(int tokensBeforeStall)
    {
        _provider.StallAfter = tokensBeforeStall;
        // Worker A never renews its request, so it looks orphaned as soon as it stalls.
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = _redis.ConnectionString,
            ["Inference:Models:stalling:Provider"] = StallingChatClient.Name,
            ["Streaming:FirstTokenTimeout"] = "00:01:00",
            ["Worker:ClaimInterval"] = "00:10:00",
        };
        var workerA = await _services.StartWorkerAsync(settings, Ct);
        var id = await EnqueueAsync(_redis.Database, Request("fenced", Tokens, model: "stalling"));
        await _provider.Stalled.WaitAsync(Bound, Ct);

        settings["Worker:ClaimIdleTime"] = "00:00:01";
        settings["Worker:ClaimInterval"] = "00:00:00.200";
        await _services.StartWorkerAsync(settings, Ct);
        var ended = await WaitForEndAsync(_redis.Connection, id, Ct);

        _provider.Release();
        await _provider.StalledCallFinished.WaitAsync(Bound, Ct);
        // Stopping A waits for its run to finish, so whatever it was going to write is written by now.
        await _services.StopWorkerAsync(workerA, Ct).WaitAsync(Bound, Ct);

        var entries = await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id));
        Assert.Equal(ended.Length, entries.Length);
        Assert.Equal(EventNames.End, EventOf(entries[^1]));
        Assert.Single(entries, e => EventOf(e) == EventNames.End);
        var indices = entries.Where(e => EventOf(e) == EventNames.Token).Select(e => PayloadOf(e).GetProperty("index").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(0, indices.Count), indices);
        if (tokensBeforeStall > 0)
        {
            // The takeover could not continue A's text: it ended the stream as lost.
            Assert.Equal(tokensBeforeStall, indices.Count);
            Assert.Equal(ErrorCodes.WorkerLost, PayloadOf(entries[^2]).GetProperty("code").GetString());
        }
        else
        {
            // Nothing had been sent: the takeover ran the request again, to its end.
            Assert.Equal(Tokens, indices.Count);
            Assert.Equal(EndReasons.Length, PayloadOf(entries[^1]).GetProperty("reason").GetString());
        }

        var pending = await _redis.Database.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.Equal(0, pending.PendingMessageCount);
    }

    /// <summary>
    /// The first call sends <see cref="StallAfter"/> tokens, then waits until released, then sends the rest; later calls
    /// (the takeover's) run straight through.
    /// </summary>
    private sealed class StallingChatClient : IChatClient
    {
        public const string Name = "stalling";

        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;

        public int StallAfter { get; set; }

        public Task Stalled => _stalled.Task;

        public Task StalledCallFinished => _finished.Task;

        public void Release() => _release.TrySetResult();

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var first = Interlocked.Increment(ref _calls) == 1;
            try
            {
                for (var i = 0; i < options!.MaxOutputTokens; i++)
                {
                    if (first && i == StallAfter)
                    {
                        _stalled.TrySetResult();
                        await _release.Task;
                    }

                    yield return new ChatResponseUpdate(ChatRole.Assistant, $" t{i}");
                }
            }
            finally
            {
                if (first)
                {
                    _finished.TrySetResult();
                }
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
