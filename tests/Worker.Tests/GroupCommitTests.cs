using Polly;
using Polly.Retry;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Generation;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// The worker's group commit against a real redis-server: the batches of many streams share script calls, while
/// fencing, order and idempotent retries stay per stream.
/// </summary>
public sealed class GroupCommitTests : IAsyncLifetime
{
    private static readonly StreamingOptions Limits = new();

    private readonly RedisServer _redis = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => _redis.InitializeAsync();

    public ValueTask DisposeAsync() => _redis.DisposeAsync();

    [Fact]
    public async Task EveryStreamWaitingAtAFlushGoesOutInOneScriptCall()
    {
        const int streams = 100;
        const int rounds = 3;
        await using var flusher = new StreamFlusher(_redis.Connection, ResiliencePipeline.Empty, run: false);
        var (ids, writers) = await TakeStreamsAsync(flusher, streams);
        var before = await ScriptCalls.CountAsync(_redis.Connection);

        for (var round = 0; round < rounds; round++)
        {
            foreach (var writer in writers)
            {
                await writer.AppendTokenAsync($"t{round}", round, Ct);
            }

            await flusher.FlushReadyAsync();
        }

        Assert.Equal(rounds, await ScriptCalls.CountAsync(_redis.Connection) - before);
        Assert.Equal(streams * rounds, await AppliedBatchesAsync(ids));
        foreach (var id in ids)
        {
            var entries = await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id));
            Assert.Equal(Enumerable.Range(0, rounds), entries.Where(e => EventOf(e) == EventNames.Token).Select(e => PayloadOf(e).GetProperty("index").GetInt32()));
        }
    }

    [Fact]
    public async Task ConcurrentStreamsSendFewerScriptCallsThanBatches()
    {
        const int streams = 200;
        const int tokens = 5;
        await using var flusher = new StreamFlusher(_redis.Connection, ResiliencePipeline.Empty, run: true);
        var (ids, writers) = await TakeStreamsAsync(flusher, streams);
        var before = await ScriptCalls.CountAsync(_redis.Connection);

        await Task.WhenAll(writers.Select(async writer =>
        {
            for (var i = 0; i < tokens; i++)
            {
                await Task.Yield();
                await writer.AppendTokenAsync($"t{i}", i, Ct);
            }

            await writer.CompleteAsync(EndReasons.Length, tokens);
        })).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var calls = await ScriptCalls.CountAsync(_redis.Connection) - before;
        var batches = await AppliedBatchesAsync(ids);
        // Every stream needs one batch at least; calls shared by many streams number far fewer.
        Assert.InRange(batches, streams, streams * (tokens + 1));
        Assert.InRange(calls, 1, batches / 2);
        foreach (var id in ids)
        {
            var entries = await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id));
            Assert.Equal(["start", "token", "token", "token", "token", "token", "end"], entries.Select(EventOf));
            Assert.Equal(Enumerable.Range(0, tokens), entries[1..^1].Select(e => PayloadOf(e).GetProperty("index").GetInt32()));
        }
    }

    [Fact]
    public async Task AFencedStreamIsRefusedWhileTheOthersInTheSameCallAreWritten()
    {
        await using var flusher = new StreamFlusher(_redis.Connection, ResiliencePipeline.Empty, run: false);
        var (ids, writers) = await TakeStreamsAsync(flusher, 3);
        // Another generation takes the middle stream over: the first writer of it is now stale.
        var takeover = await TokenStreamWriter.TakeAsync(flusher, ids[1], Limits);
        Assert.NotNull(takeover.Writer);
        var before = await ScriptCalls.CountAsync(_redis.Connection);

        foreach (var writer in writers)
        {
            await writer.AppendTokenAsync("stale?", 0, Ct);
        }

        await flusher.FlushReadyAsync();

        Assert.Equal(1, await ScriptCalls.CountAsync(_redis.Connection) - before);
        Assert.True(writers[1].Fenced);
        Assert.False(writers[1].IsOpen);
        Assert.Equal(["start"], (await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(ids[1]))).Select(EventOf));
        foreach (var i in new[] { 0, 2 })
        {
            Assert.False(writers[i].Fenced);
            Assert.True(writers[i].IsOpen);
            Assert.Equal(["start", "token"], (await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(ids[i]))).Select(EventOf));
        }

        var disposing = takeover.Writer.DisposeAsync().AsTask();
        await flusher.FlushReadyAsync();
        await disposing.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    [Fact]
    public async Task ACallRetriedAfterClientKillDuplicatesNothing()
    {
        const int streams = 20;
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        var armed = false;
        var killed = 0;
        var retry = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            // The first call that Redis applied loses its connection before its reply is used: it is sent again.
            ShouldHandle = async args =>
            {
                if (args.Outcome.Exception is RedisConnectionException or RedisTimeoutException)
                {
                    return true;
                }

                if (args.Outcome.Exception is null && Volatile.Read(ref armed) && Interlocked.Exchange(ref killed, 1) == 0)
                {
                    await _redis.Database.ExecuteAsync("CLIENT", "KILL", "TYPE", "normal");
                    return true;
                }

                return false;
            },
            MaxRetryAttempts = 100,
            Delay = TimeSpan.FromMilliseconds(50),
        }).Build();
        await using var flusher = new StreamFlusher(connection, retry, run: false);
        var (ids, writers) = await TakeStreamsAsync(flusher, streams);
        var before = await ScriptCalls.CountAsync(_redis.Connection);
        Volatile.Write(ref armed, true);

        foreach (var writer in writers)
        {
            await writer.AppendTokenAsync("once", 0, Ct);
        }

        await flusher.FlushReadyAsync().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var completing = writers.Select(w => w.CompleteAsync(EndReasons.Stop, 1)).ToList();
        await flusher.FlushReadyAsync().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await Task.WhenAll(completing).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(1, killed);
        // The first call ran twice on the server, the end's call once.
        Assert.Equal(3, await ScriptCalls.CountAsync(_redis.Connection) - before);
        foreach (var (id, writer) in ids.Zip(writers))
        {
            Assert.False(writer.Fenced);
            Assert.Equal(["start", "token", "end"], (await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id))).Select(EventOf));
        }
    }

    private async Task<(List<string> Ids, List<TokenStreamWriter> Writers)> TakeStreamsAsync(StreamFlusher flusher, int count)
    {
        var ids = new List<string>();
        var writers = new List<TokenStreamWriter>();
        for (var i = 0; i < count; i++)
        {
            var id = Guid.CreateVersion7().ToString("N");
            await _redis.Database.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, "synthetic"))]);
            var taken = await TokenStreamWriter.TakeAsync(flusher, id, Limits);
            ids.Add(id);
            writers.Add(taken.Writer ?? throw new InvalidOperationException("The stream could not be taken."));
        }

        return (ids, writers);
    }

    /// <summary>Batches applied across <paramref name="ids"/>: each writer hash keeps its last batch number.</summary>
    private async Task<long> AppliedBatchesAsync(IEnumerable<string> ids)
    {
        long batches = 0;
        foreach (var id in ids)
        {
            batches += (long)await _redis.Database.HashGetAsync(RedisKeys.Writer(id), WriterFields.Batch);
        }

        return batches;
    }
}
