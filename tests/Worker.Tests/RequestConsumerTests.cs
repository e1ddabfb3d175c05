using Microsoft.Extensions.AI;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>Two workers and a real redis-server: the consumer group, the token stream, the end of every stream.</summary>
public sealed class RequestConsumerTests(RequestConsumerTests.Fixture fixture) : IClassFixture<RequestConsumerTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00",
                ["Streaming:FirstTokenTimeout"] = "00:00:00.500",
                ["Streaming:ResumeWindow"] = "00:02:00",
                ["Worker:ClaimIdleTime"] = "00:00:01",
                ["Worker:ClaimInterval"] = "00:00:00.200",
            }, workers: 2, gateway: false);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDatabase Db => fixture.Redis.Database;

    [Fact]
    public async Task AQueuedRequestIsGeneratedAcknowledgedAndRemovedFromTheQueue()
    {
        var id = await EnqueueAsync(Db, Request("hello worker", 5));

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "token", "token", "token", "token", "token", "end"], entries.Select(EventOf));
        var seed = SyntheticChatClient.Seed([new ChatMessage(ChatRole.User, "hello worker")]);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => SyntheticChatClient.TokenText(seed, i)),
            entries[1..^1].Select(e => PayloadOf(e).GetProperty("text").GetString()));
        Assert.Equal(Enumerable.Range(0, 5), entries[1..^1].Select(e => PayloadOf(e).GetProperty("index").GetInt32()));
        var end = PayloadOf(entries[^1]);
        Assert.Equal("length", end.GetProperty("reason").GetString());
        Assert.Equal(5, end.GetProperty("usage").GetProperty("output_tokens").GetInt32());

        var ttl = await Db.KeyTimeToLiveAsync(RedisKeys.Tokens(id));
        Assert.InRange(ttl!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(2));
        await AssertQueueSettledAsync(id);
    }

    [Fact]
    public async Task TokensThatArriveTogetherAreWrittenInBatches()
    {
        const int tokens = 4000;
        var before = await ScriptCallsAsync();
        var id = await EnqueueAsync(Db, Request("fast", tokens));

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(tokens, entries.Count(e => EventOf(e) == EventNames.Token));
        var calls = await ScriptCallsAsync() - before;
        // With no delay between tokens, a round trip per token would make 4000 calls.
        Assert.InRange(calls, 1, tokens / 10);
    }

    [Fact]
    public async Task TwoWorkersShareTheQueueAndEveryRequestRunsExactlyOnce()
    {
        var ids = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            ids.Add(await EnqueueAsync(Db, Request($"shared {i}", 3)));
        }

        foreach (var id in ids)
        {
            var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);
            Assert.Equal(1, entries.Count(e => EventOf(e) == EventNames.Start));
            Assert.Equal(3, entries.Count(e => EventOf(e) == EventNames.Token));
            Assert.Equal(1, entries.Count(e => EventOf(e) == EventNames.End));
            await AssertQueueSettledAsync(id);
        }

        var consumers = await Db.StreamConsumerInfoAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.True(consumers.Length >= 2, $"{consumers.Length} consumers in the group");
    }

    [Fact]
    public async Task AFailingProviderEndsWithAnErrorEventThenEnd()
    {
        var id = await EnqueueAsync(Db, Request("fail", 10, model: "synthetic-fail"));

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "token", "token", "token", "error", "end"], entries.Select(EventOf));
        var error = PayloadOf(entries[^2]);
        Assert.Equal(ErrorCodes.ProviderError, error.GetProperty("code").GetString());
        Assert.DoesNotContain("on purpose", error.GetProperty("message").GetString());
        Assert.Equal("error", PayloadOf(entries[^1]).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task AProviderThatSendsNothingHitsTheFirstTokenTimeout()
    {
        var id = await EnqueueAsync(Db, Request("stall", 10, model: "synthetic-stall"));

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "error", "end"], entries.Select(EventOf));
        Assert.Equal(ErrorCodes.ProviderTimeout, PayloadOf(entries[1]).GetProperty("code").GetString());
        Assert.True(PayloadOf(entries[1]).GetProperty("retryable").GetBoolean());
    }

    [Fact]
    public async Task ARequestCancelledBeforePickupEndsCancelledWithoutTokens()
    {
        var id = Guid.CreateVersion7().ToString("N");
        await Db.StringSetAsync(RedisKeys.Cancelled(id), 1, TimeSpan.FromMinutes(1));
        await EnqueueAsync(Db, Request("too late", 100), id);

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "end"], entries.Select(EventOf));
        Assert.Equal("cancelled", PayloadOf(entries[^1]).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task ARequestHeldByADeadWorkerIsClaimedAndRunAgain()
    {
        var id = await DeliverToDeadWorkerAsync(Request("orphan", 4));

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "token", "token", "token", "token", "end"], entries.Select(EventOf));
        Assert.Equal("length", PayloadOf(entries[^1]).GetProperty("reason").GetString());
        await AssertQueueSettledAsync(id);
    }

    [Fact]
    public async Task ARequestThatDiedAfterSendingTokensEndsWithWorkerLost()
    {
        var id = Guid.CreateVersion7().ToString("N");
        await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, "synthetic"))]);
        await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Token), new(StreamFields.Data, Envelopes.Token("half", 0))]);
        await DeliverToDeadWorkerAsync(Request("half done", 4), id, createStream: false);

        var entries = await WaitForEndAsync(fixture.Redis.Connection, id, Ct);

        Assert.Equal(["start", "token", "error", "end"], entries.Select(EventOf));
        Assert.Equal(ErrorCodes.WorkerLost, PayloadOf(entries[2]).GetProperty("code").GetString());
        await AssertQueueSettledAsync(id);
    }

    /// <summary>Queues a request and, in the same script, delivers it to a consumer that never runs it.</summary>
    private async Task<string> DeliverToDeadWorkerAsync(InferenceRequest request, string? id = null, bool createStream = true)
    {
        id ??= Guid.CreateVersion7().ToString("N");
        if (createStream)
        {
            await Db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, request.Model))]);
        }

        await Db.ScriptEvaluateAsync("""
            redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'body', ARGV[2])
            return redis.call('XREADGROUP', 'GROUP', ARGV[3], 'dead-worker', 'COUNT', 1, 'STREAMS', KEYS[1], '>')
            """, [RedisKeys.Requests], [id, request.ToUtf8Json(), RedisKeys.WorkersGroup]);
        return id;
    }

    private Task AssertQueueSettledAsync(string id) => WaitUntilDequeuedAsync(fixture.Redis.Connection, id, Ct);

    private Task<long> ScriptCallsAsync() => ScriptCalls.CountAsync(fixture.Redis.Connection);
}
