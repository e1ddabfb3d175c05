using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// A client's concurrent streams (<c>Streaming:MaxConcurrentStreamsPerClient</c>), counted across API replicas in
/// <see cref="RedisKeys.ClientStreams"/>; a limit of 0 turns the count off.
/// </summary>
internal sealed class ClientSlots(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    /// <summary>Takes one of the client's concurrent-stream slots as <paramref name="member"/> (a stream id or an attachment); false when it has them all.</summary>
    public async Task<bool> TryAcquireAsync(string client, string member, CancellationToken cancellationToken)
    {
        var limits = options.CurrentValue;
        if (limits.MaxConcurrentStreamsPerClient == 0)
        {
            return true;
        }

        var lifetime = (long)(limits.MaxDuration + limits.FirstTokenTimeout + limits.DisconnectGrace).TotalMilliseconds;
        var reply = await redis.GetDatabase().ScriptEvaluateAsync(ClientSlotScripts.Acquire, ClientSlotScripts.AcquireKeys(client),
            ClientSlotScripts.AcquireArguments(limits.MaxConcurrentStreamsPerClient, lifetime, member)).WaitAsync(cancellationToken);
        return (ClientSlotScripts.AcquireReply)(int)reply == ClientSlotScripts.AcquireReply.Taken;
    }

    /// <summary>Frees the client's slots held as <paramref name="members"/>.</summary>
    public async Task ReleaseAsync(string client, RedisValue[] members)
    {
        if (options.CurrentValue.MaxConcurrentStreamsPerClient > 0)
        {
            await redis.GetDatabase().SortedSetRemoveAsync(RedisKeys.ClientStreams(client), members);
        }
    }
}
