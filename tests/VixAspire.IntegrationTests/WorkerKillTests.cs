using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// A worker SIGKILLed under load, with every service a real process behind the real gateway: every one of its
/// streams still ends, whether it had sent tokens or not, and the queue is left with no pending entry.
/// </summary>
public sealed class WorkerKillTests : IAsyncLifetime
{
    private const int StartedStreams = 50;
    private const int WaitingStreams = 10;
    private const int TokensPerStream = 200;

    private readonly RedisServer _redis = new();
    private ServiceProcesses _stack = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _stack = await ServiceProcesses.StartAsync(_redis, new Dictionary<string, string?>
        {
            ["Worker:ClaimIdleTime"] = "00:00:01",
            ["Worker:ClaimInterval"] = "00:00:00.200",
        }, apis: 1, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _stack.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task EveryStreamOfAKilledWorkerEndsEvenWhenTheSurvivorIsAtItsConcurrencyLimit()
    {
        // The victim paces its tokens and holds back every first token for a few seconds, so that requests sent
        // last have no token yet when it dies. The survivor runs a tenth as many generations as there are orphans,
        // so it claims them over many rounds, each of which fills its free slots.
        var victim = await _stack.StartWorkerAsync(new Dictionary<string, string?>
        {
            ["Worker:MaxConcurrency"] = "256",
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:03",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00.050",
        }, Ct);
        using var client = _stack.CreateClient();

        var streams = Enumerable.Range(0, StartedStreams).Select(i => FollowAsync(client, $"started {i}")).ToList();
        await Task.WhenAll(streams.Select(s => s.FirstToken)).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        streams.AddRange(Enumerable.Range(0, WaitingStreams).Select(i => FollowAsync(client, $"waiting {i}")));
        await WaitUntilAsync(async () => await PendingAsync() == StartedStreams + WaitingStreams, "the victim to hold every request");

        await victim.KillAsync();
        var ids = await Task.WhenAll(streams.Select(s => s.Id)).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var hadTokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            var entries = await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id));
            if (entries.Any(e => e[StreamFields.Event] == EventNames.Token))
            {
                hadTokens.Add(id);
            }
        }

        await _stack.StartWorkerAsync(new Dictionary<string, string?>
        {
            ["Worker:MaxConcurrency"] = "6",
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00",
        }, Ct);

        var all = Task.WhenAll(streams.Select(s => s.Events));
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(90), Ct)) != all)
        {
            Assert.Fail($"{streams.Count(s => s.Events.IsCompleted)} of {streams.Count} streams ended; {await PendingAsync()} requests pending.\n{_stack.Logs}");
        }

        var results = await all;

        Assert.All(results, AssertWellFormed);
        var lost = results.Where(r => hadTokens.Contains(r[0].Payload.GetProperty("id").GetString()!)).ToList();
        var rerun = results.Except(lost).ToList();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{results.Length} streams, {results.Count(r => r[^1].EventType == "end")} ended: {lost.Count} had tokens (worker_lost), {rerun.Count} ran again and completed");
        Assert.True(lost.Count >= StartedStreams, $"{lost.Count} streams had tokens when the worker died; expected at least {StartedStreams}.");
        Assert.NotEmpty(rerun);
        Assert.All(lost, events =>
        {
            var error = Assert.Single(events, e => e.EventType == "error");
            Assert.Equal(ErrorCodes.WorkerLost, error.Payload.GetProperty("code").GetString());
            Assert.True(error.Payload.GetProperty("retryable").GetBoolean());
            Assert.Equal(EndReasons.Error, events.EndReason());
        });
        Assert.All(rerun, events =>
        {
            Assert.DoesNotContain(events, e => e.EventType == "error");
            Assert.Equal(EndReasons.Length, events.EndReason());
            Assert.Equal(TokensPerStream, events.Count(e => e.EventType == "token"));
        });

        await WaitUntilAsync(async () => await PendingAsync() == 0 && await _redis.Database.StreamLengthAsync(RedisKeys.Requests) == 0,
            "the queue to be settled");
    }

    private static void AssertWellFormed(List<ServerEvent> events) => Assert.Null(events.Malformation());

    /// <summary>Posts a request through the gateway and reads its stream to the end, as a client would.</summary>
    private static StreamFollowing FollowAsync(HttpClient client, string prompt) =>
        StreamFollowing.Start(client, new { prompt, max_tokens = TokensPerStream }, Ct);

    private async Task<long> PendingAsync() =>
        (await _redis.Database.StreamPendingAsync(RedisKeys.Requests, RedisKeys.WorkersGroup)).PendingMessageCount;

    private Task WaitUntilAsync(Func<Task<bool>> condition, string what) =>
        Eventually.UntilAsync(condition, TimeSpan.FromSeconds(60), () => $"{what}\n{_stack.Logs}", Ct);
}
