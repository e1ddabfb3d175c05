using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// This replica's id, made at start: its part of every attach-lease member, so members of different replicas never
/// collide, and the name of its wake-up channel, which writers find in those members (<see cref="WakeUps"/>).
/// </summary>
internal sealed class ReplicaIdentity
{
    public string Id { get; } = Guid.NewGuid().ToString("N")[..12];

    public RedisChannel WakeChannel => RedisKeys.ReplicaWake(Id);
}
