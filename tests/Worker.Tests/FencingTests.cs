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
public sealed class FencingTests : ServicesFixture
{
    private const int Tokens = 10;

    private readonly StallingProvider _provider = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public override ValueTask InitializeAsync() => StartAsync(new Dictionary<string, string?>
    {
        ["Inference:Models:stalling:Provider"] = StallingProvider.Name,
    }, workers: 0, gateway: false, workerServices: s => s.AddKeyedSingleton<IChatClient>(StallingProvider.Name, _provider.Client), cancellationToken: Ct);

    public override async ValueTask DisposeAsync()
    {
        _provider.Release();
        await base.DisposeAsync();
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
            ["ConnectionStrings:redis"] = Redis.ConnectionString,
            ["Inference:Models:stalling:Provider"] = StallingProvider.Name,
            ["Streaming:FirstTokenTimeout"] = "00:01:00",
            ["Worker:ClaimInterval"] = "00:10:00",
        };
        var workerA = await Services.StartWorkerAsync(settings, Ct);
        var id = await EnqueueAsync(Redis.Database, Request("fenced", Tokens, model: "stalling"));
        await _provider.Stalled.WaitAsync(Bound, Ct);

        settings["Worker:ClaimIdleTime"] = "00:00:01";
        settings["Worker:ClaimInterval"] = "00:00:00.200";
        await Services.StartWorkerAsync(settings, Ct);
        var ended = await WaitForEndAsync(Redis.Connection, id, Ct);

        _provider.Release();
        await _provider.StalledCallFinished.WaitAsync(Bound, Ct);
        // Stopping A waits for its run to finish, so whatever it was going to write is written by now.
        await Services.StopWorkerAsync(workerA, Ct).WaitAsync(Bound, Ct);

        var entries = await Redis.Database.StreamRangeAsync(RedisKeys.Tokens(id));
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

        var pending = await Redis.Database.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.Equal(0, pending.PendingMessageCount);
    }

    /// <summary>
    /// A scripted upstream whose first call sends <see cref="StallAfter"/> tokens, then waits until released, then sends
    /// the rest; later calls (the takeover's) run straight through.
    /// </summary>
    private sealed class StallingProvider
    {
        public const string Name = "stalling";

        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public StallingProvider() => Client = new ScriptedChatClient(Script);

        public ScriptedChatClient Client { get; }

        public int StallAfter { get; set; }

        public Task Stalled => _stalled.Task;

        public Task StalledCallFinished => _finished.Task;

        public void Release() => _release.TrySetResult();

        private async IAsyncEnumerable<ChatResponseUpdate> Script(ScriptedCall call, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var first = call.Number == 1;
            try
            {
                await foreach (var update in ScriptedChatClient.Tokens(async (i, _) =>
                {
                    if (first && i == StallAfter)
                    {
                        _stalled.TrySetResult();
                        await _release.Task;
                    }
                })(call, cancellationToken))
                {
                    yield return update;
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
    }
}
