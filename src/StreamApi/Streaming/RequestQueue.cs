using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Begins a request's token stream and puts the request on the worker queue; tells whether a stream exists for a key.</summary>
internal sealed class RequestQueue(IConnectionMultiplexer redis, RedisTopology topology, IOptionsMonitor<StreamingOptions> options)
{
    public static string NewId() => Guid.CreateVersion7().ToString("N");

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

        RedisValue[] Arguments(IReadOnlyCollection<RedisValue> queueFields) => BeginScripts.BeginArguments(start,
            (long)limits.InitialStreamTtl.TotalMilliseconds, client.Key, lease.Member, StreamAttachments.LeaseMilliseconds(limits), cap, queueFields);

        if (!topology.IsCluster)
        {
            var reply = await db.ScriptEvaluateAsync(BeginScripts.Begin, BeginScripts.BeginKeys(id, queue), Arguments(fields));
            return (BeginScripts.BeginReply)(int)reply == BeginScripts.BeginReply.Begun;
        }

        if (await db.StreamLengthAsync(queue) >= cap)
        {
            return false;
        }

        await db.ScriptEvaluateAsync(BeginScripts.Begin, BeginScripts.BeginKeys(id, queue: null), Arguments(queueFields: []));
        await db.StreamAddAsync(queue, [.. fields.Chunk(2).Select(static pair => new NameValueEntry(pair[0], pair[1]))]);
        return true;
    }

    /// <summary>Whether stream <paramref name="id"/> exists, for <paramref name="key"/> when given: another key's stream does not.</summary>
    public async Task<bool> ExistsAsync(string id, string? key, CancellationToken cancellationToken) =>
        (BeginScripts.ExistsReply)(int)await redis.GetDatabase().ScriptEvaluateAsync(BeginScripts.Exists, BeginScripts.ExistsKeys(id),
            BeginScripts.ExistsArguments(key)).WaitAsync(cancellationToken) == BeginScripts.ExistsReply.Exists;
}
