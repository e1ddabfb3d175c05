using System.Text.Json;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Contracts.Scripts;

namespace VixAspire.TestSupport;

/// <summary>Plays the API's part against Redis directly, for tests of the worker alone.</summary>
public static class TokenStreams
{
    /// <summary>Creates the token stream with its start entry and queues the request (on <paramref name="queue"/>, else the single queue), as the API does.</summary>
    public static async Task<string> EnqueueAsync(IDatabase db, InferenceRequest request, string? id = null, RedisKey? queue = null)
    {
        id ??= Guid.CreateVersion7().ToString("N");
        await db.StreamAddAsync(RedisKeys.Tokens(id), [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, request.Model))]);
        await db.KeyExpireAsync(RedisKeys.Tokens(id), TimeSpan.FromMinutes(15));
        await db.StreamAddAsync(queue ?? RedisKeys.Requests, [new(StreamFields.RequestId, id), new(StreamFields.RequestBody, request.ToUtf8Json())]);
        return id;
    }

    // KEYS: token stream, clients. ARGV: stream id, event, data.
    private const string AppendScript = WakeUpScripts.Functions + $$"""
        local id = redis.call('XADD', KEYS[1], '*', '{{StreamFields.Event}}', ARGV[2], '{{StreamFields.Data}}', ARGV[3])
        local wakes = {}
        vix_wake_add(wakes, KEYS[2], ARGV[1])
        vix_wake_send(wakes)
        return id
        """;

    /// <summary>Plays the worker: appends one entry to stream <paramref name="id"/> and wakes the API replicas that follow it, as a worker's write does.</summary>
    public static async Task<string> AppendAsync(IDatabase db, string id, string eventName, byte[] envelope) =>
        (string)(await db.ScriptEvaluateAsync(AppendScript, [RedisKeys.Tokens(id), RedisKeys.Clients(id)], [id, eventName, envelope]))!;

    public static InferenceRequest Request(string prompt, int maxTokens, string model = "synthetic") =>
        new(model, [new ChatTurn("user", prompt)], maxTokens, null);

    /// <summary>Waits (woken by the stream's keyspace notifications, never polling) until the stream holds an entry matching <paramref name="until"/>.</summary>
    public static async Task<StreamEntry[]> WaitForAsync(IConnectionMultiplexer redis, string id, Func<StreamEntry[], bool> until, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var woken = new SemaphoreSlim(0);
        var subscriber = redis.GetSubscriber();
        Action<RedisChannel, RedisValue> handler = (_, _) => woken.Release();
        var channel = RedisChannel.Literal($"__keyspace@0__:{RedisKeys.Tokens(id)}");
        await subscriber.SubscribeAsync(channel, handler);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            while (true)
            {
                var entries = await redis.GetDatabase().StreamRangeAsync(RedisKeys.Tokens(id));
                if (until(entries))
                {
                    return entries;
                }

                try
                {
                    await woken.WaitAsync(deadline.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"Stream {id} did not reach the expected state within {timeout}; it holds {entries.Length} entries.");
                }
            }
        }
        finally
        {
            await subscriber.UnsubscribeAsync(channel, handler);
        }
    }

    public static Task<StreamEntry[]> WaitForEndAsync(IConnectionMultiplexer redis, string id, CancellationToken cancellationToken) =>
        WaitForAsync(redis, id, e => e.Length > 0 && e[^1][StreamFields.Event] == EventNames.End, TimeSpan.FromSeconds(30), cancellationToken);

    /// <summary>
    /// Waits until the request's queue entry is acknowledged and deleted (a worker ends the stream first,
    /// then settles the queue). Woken by keyspace notifications on the queue, which <see cref="RedisServer"/> enables.
    /// </summary>
    public static async Task WaitUntilDequeuedAsync(IConnectionMultiplexer redis, string id, CancellationToken cancellationToken)
    {
        var changed = new SemaphoreSlim(0);
        var channel = RedisChannel.Literal($"__keyspace@0__:{RedisKeys.Requests}");
        Action<RedisChannel, RedisValue> handler = (_, _) => changed.Release();
        var subscriber = redis.GetSubscriber();
        await subscriber.SubscribeAsync(channel, handler);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(30));
            while (true)
            {
                var queued = await redis.GetDatabase().StreamRangeAsync(RedisKeys.Requests);
                // The worker settles an entry with XACK and XDEL in one script: once the entry is gone, it was acknowledged.
                if (!queued.Any(e => e[StreamFields.RequestId] == id))
                {
                    return;
                }

                await changed.WaitAsync(deadline.Token);
            }
        }
        finally
        {
            await subscriber.UnsubscribeAsync(channel, handler);
        }
    }

    public static string EventOf(StreamEntry entry) => entry[StreamFields.Event].ToString();

    public static JsonElement PayloadOf(StreamEntry entry)
    {
        using var json = JsonDocument.Parse(((ReadOnlyMemory<byte>)entry[StreamFields.Data]));
        return json.RootElement.GetProperty("payload").Clone();
    }
}
