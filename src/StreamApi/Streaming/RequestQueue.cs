using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>Puts requests on the worker queue and signals cancellation, through Redis.</summary>
internal sealed class RequestQueue(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    /// <summary>
    /// Creates the request's token stream with its <c>start</c> entry, then appends the request to the
    /// queue, pipelined in one round trip. The start entry exists before any worker can see the request,
    /// so a client can attach as soon as it has the id.
    /// </summary>
    public async Task<string> EnqueueAsync(InferenceRequest request, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        var id = Guid.CreateVersion7().ToString("N");
        var tokens = RedisKeys.Tokens(id);
        var db = redis.GetDatabase();

        var queueFields = new List<NameValueEntry>(4)
        {
            new(StreamFields.RequestId, id),
            new(StreamFields.RequestBody, request.ToUtf8Json()),
        };
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
        var enqueue = batch.StreamAddAsync(RedisKeys.Requests, [.. queueFields],
            maxLength: limits.MaxQueueLength, useApproximateMaxLength: true);
        batch.Execute();
        await Task.WhenAll(start, expire, enqueue).WaitAsync(cancellationToken);
        return id;
    }

    public async Task<bool> ExistsAsync(string id, CancellationToken cancellationToken) =>
        await redis.GetDatabase().KeyExistsAsync(RedisKeys.Tokens(id)).WaitAsync(cancellationToken);
}
