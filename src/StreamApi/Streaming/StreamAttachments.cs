using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Who follows a stream: each client holds an attach lease (see <see cref="AttachLeases"/>) that this replica takes,
/// renews and ends, so a replica that dies leaves nothing that keeps a stream alive. Each step is one script on the
/// request's <c>{id}</c> keys, so it is atomic across API replicas and safe on Redis Cluster.
/// </summary>
internal sealed class StreamAttachments(IConnectionMultiplexer redis, ReplicaIdentity replica, IOptionsMonitor<StreamingOptions> options)
{
    private long _attachments;

    /// <summary>A new lease on stream <paramref name="id"/>, held once <see cref="AttachAsync"/> took it.</summary>
    public AttachLease NewLease(string id) => new(id, $"{replica.Id}:{Interlocked.Increment(ref _attachments)}");

    /// <summary>Takes (or, again, extends) <paramref name="lease"/>, which <see cref="RenewAsync"/> keeps and <see cref="DetachAsync"/> ends.</summary>
    public async Task AttachAsync(AttachLease lease, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        await redis.GetDatabase().ScriptEvaluateAsync(LeaseScripts.Attach, LeaseScripts.AttachKeys(lease.StreamId),
            LeaseScripts.AttachArguments(lease.Member, LeaseMilliseconds(limits), (long)limits.InitialStreamTtl.TotalMilliseconds)).WaitAsync(cancellationToken);
    }

    /// <summary>Renews <paramref name="lease"/> (when there is one) and tells whether stream <paramref name="id"/> still exists, in one command.</summary>
    public async Task<bool> RenewAsync(string id, AttachLease? lease, CancellationToken cancellationToken)
    {
        var reply = await redis.GetDatabase().ScriptEvaluateAsync(LeaseScripts.Renew, LeaseScripts.RenewKeys(id),
            LeaseScripts.RenewArguments(lease?.Member, LeaseMilliseconds(options.CurrentValue))).WaitAsync(cancellationToken);
        return (LeaseScripts.RenewReply)(int)reply == LeaseScripts.RenewReply.StreamExists;
    }

    /// <summary>Ends <paramref name="lease"/>; true when no client of the stream holds a live lease any more, so the grace begins.</summary>
    public async Task<bool> DetachAsync(AttachLease lease, CancellationToken cancellationToken)
    {
        var reply = await redis.GetDatabase().ScriptEvaluateAsync(LeaseScripts.Detach, LeaseScripts.DetachKeys(lease.StreamId),
            LeaseScripts.DetachArguments(lease.Member, (long)options.CurrentValue.InitialStreamTtl.TotalMilliseconds)).WaitAsync(cancellationToken);
        return (LeaseScripts.DetachReply)(int)reply == LeaseScripts.DetachReply.LastLeft;
    }

    internal static long LeaseMilliseconds(StreamingOptions limits) => (long)AttachLeases.Duration(limits).TotalMilliseconds;
}

/// <summary>One client's attachment to one stream: the member of <see cref="RedisKeys.Clients"/> its replica renews.</summary>
internal sealed record AttachLease(string StreamId, string Member);
