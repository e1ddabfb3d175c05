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

    // KEYS: tokens stream, owner, clients, then the queue partition when this script queues the request too (one
    // server). ARGV: start envelope, TTL ms, API key ('' for none), lease member, lease ms, partition cap, then the queue
    // entry's fields and values. Returns 0, writing nothing, when the partition is at its cap; else 1.
    private const string BeginScript = StreamControl.AttachFunctions + $$"""
        local queued = #KEYS == 4
        if queued and redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[6]) then return 0 end
        redis.call('XADD', KEYS[1], '*', '{{StreamFields.Event}}', '{{EventNames.Start}}', '{{StreamFields.Data}}', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
        vix_attach(KEYS[3], ARGV[4], ARGV[5], ARGV[2])
        if queued then redis.call('XADD', KEYS[4], '*', unpack(ARGV, 7)) end
        return 1
        """;

    /// <summary>
    /// Creates the request's token stream with its <c>start</c> entry (<paramref name="start"/>) and the client's attach <paramref name="lease"/>,
    /// then appends the request to a queue partition: one script on a single server. The start entry exists before any
    /// worker can see the request, so a client can attach as soon as it has the id. In a cluster the stream and the
    /// queue live on different shards, whose connections keep no order between them, so the request is queued only
    /// once the start is written (three round trips: the partition's length, the start, the entry).
    /// Returns false, queueing nothing, when the partition's backlog is at its share of the cap (an even share, since
    /// requests are spread evenly): the queue is never trimmed, since its entries are unfinished work. Not cancellable
    /// once called: a client that leaves now still gets its generation cancelled through the disconnect grace. The
    /// entry names <paramref name="client"/>, whose slot the worker frees at the end; a client with an API key is
    /// recorded as the stream's owner.
    /// </summary>
    public async Task<bool> EnqueueAsync(string id, byte[] start, InferenceRequest request, ClientIdentity client, AttachLease lease)
    {
        var limits = options.CurrentValue;
        var db = redis.GetDatabase();
        var queue = topology.PickQueue();
        var cap = Math.Max(1, limits.MaxQueueLength / topology.Queues.Count);
        // The queue entry's fields and values, in pairs.
        var fields = new List<RedisValue>(10)
        {
            StreamFields.RequestId, id,
            StreamFields.RequestBody, request.ToUtf8Json(),
        };
        if (limits.MaxConcurrentStreamsPerClient > 0)
        {
            fields.AddRange([StreamFields.Client, client.Id]);
        }

        if (Activity.Current is { } activity)
        {
            fields.AddRange([StreamFields.TraceParent, activity.Id]);
            if (activity.TraceStateString is { } state)
            {
                fields.AddRange([StreamFields.TraceState, state]);
            }
        }

        RedisKey[] keys = [RedisKeys.Tokens(id), RedisKeys.Owner(id), RedisKeys.Clients(id)];
        RedisValue[] begin =
        [
            start,
            (long)limits.InitialStreamTtl.TotalMilliseconds,
            client.Key ?? RedisValue.EmptyString,
            lease.Member,
            StreamControl.LeaseMilliseconds(limits),
            cap,
        ];
        if (!topology.IsCluster)
        {
            return (int)await db.ScriptEvaluateAsync(BeginScript, [.. keys, queue], [.. begin, .. fields]) == 1;
        }

        if (await db.StreamLengthAsync(queue) >= cap)
        {
            return false;
        }

        await db.ScriptEvaluateAsync(BeginScript, keys, begin);
        await db.StreamAddAsync(queue, [.. fields.Chunk(2).Select(static pair => new NameValueEntry(pair[0], pair[1]))]);
        return true;
    }

    /// <summary>Whether stream <paramref name="id"/> exists, for <paramref name="key"/> when given: another key's stream does not.</summary>
    public async Task<bool> ExistsAsync(string id, string? key, CancellationToken cancellationToken) =>
        (int)await redis.GetDatabase().ScriptEvaluateAsync(ExistsScript, [RedisKeys.Tokens(id), RedisKeys.Owner(id)],
            [key ?? RedisValue.EmptyString]).WaitAsync(cancellationToken) == 1;
}
