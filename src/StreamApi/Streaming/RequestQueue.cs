using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Puts requests on the worker queue and signals cancellation, through Redis.</summary>
internal sealed class RequestQueue(IConnectionMultiplexer redis, RedisTopology topology, IOptionsMonitor<StreamingOptions> options)
{
    // KEYS: tokens stream, owner. ARGV: API key ('' for any).
    private const string ExistsScript = """
        if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
        return redis.call('EXISTS', KEYS[1])
        """;

    public static string NewId() => Guid.CreateVersion7().ToString("N");

    /// <summary>
    /// Creates the request's token stream with its <c>start</c> entry, then appends the request to a queue
    /// partition, pipelined in one round trip on a single server. The start entry exists before any worker can see
    /// the request, so a client can attach as soon as it has the id; in a cluster the two live on different shards,
    /// whose connections keep no order between them, so the request is queued only once the start is written.
    /// Returns false, queueing nothing, when the partition's backlog is at its share of the cap (an even share, since
    /// requests are spread evenly): the queue is never trimmed, since its entries are unfinished work. Not cancellable once called: a
    /// client that leaves now still gets its generation cancelled through the disconnect grace. The entry names
    /// <paramref name="client"/>, whose slot the worker frees at the end; a client with an API key is recorded as
    /// the stream's owner.
    /// </summary>
    public async Task<bool> EnqueueAsync(string id, InferenceRequest request, ClientIdentity client)
    {
        var limits = options.CurrentValue;
        var db = redis.GetDatabase();
        var queue = topology.PickQueue();
        if (await db.StreamLengthAsync(queue) >= Math.Max(1, limits.MaxQueueLength / topology.Queues.Count))
        {
            return false;
        }

        var tokens = RedisKeys.Tokens(id);
        var queueFields = new List<NameValueEntry>(5)
        {
            new(StreamFields.RequestId, id),
            new(StreamFields.RequestBody, request.ToUtf8Json()),
        };
        if (limits.MaxConcurrentStreamsPerClient > 0)
        {
            queueFields.Add(new(StreamFields.Client, client.Id));
        }

        if (Activity.Current is { } activity)
        {
            queueFields.Add(new(StreamFields.TraceParent, activity.Id));
            if (activity.TraceStateString is { } state)
            {
                queueFields.Add(new(StreamFields.TraceState, state));
            }
        }

        var batch = db.CreateBatch();
        var start = batch.StreamAddAsync(tokens,
            [new(StreamFields.Event, EventNames.Start), new(StreamFields.Data, Envelopes.Start(id, request.Model))]);
        var expire = batch.KeyExpireAsync(tokens, limits.InitialStreamTtl);
        var owner = client.Key is { } key ? batch.StringSetAsync(RedisKeys.Owner(id), key, limits.InitialStreamTtl) : Task.FromResult(true);
        if (topology.IsCluster)
        {
            batch.Execute();
            await Task.WhenAll(start, expire, owner);
            await db.StreamAddAsync(queue, [.. queueFields]);
            return true;
        }

        var enqueue = batch.StreamAddAsync(queue, [.. queueFields]);
        batch.Execute();
        await Task.WhenAll(start, expire, owner, enqueue);
        return true;
    }

    /// <summary>Whether stream <paramref name="id"/> exists, for <paramref name="key"/> when given: another key's stream does not.</summary>
    public async Task<bool> ExistsAsync(string id, string? key, CancellationToken cancellationToken) =>
        (int)await redis.GetDatabase().ScriptEvaluateAsync(ExistsScript, [RedisKeys.Tokens(id), RedisKeys.Owner(id)],
            [key ?? RedisValue.EmptyString]).WaitAsync(cancellationToken) == 1;
}
