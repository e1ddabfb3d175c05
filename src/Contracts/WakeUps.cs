namespace VixAspire.Contracts;

/// <summary>
/// How a writer tells API replicas that a stream has new entries: one message per replica per write, naming every
/// stream of that write the replica follows, on the replica's own channel (<see cref="RedisKeys.ReplicaWake"/>).
/// </summary>
/// <remarks>
/// A replica learns of its streams from their attach leases (<see cref="AttachLeases"/>): a lease member is
/// <c>replica:n</c>, and the lease is taken before the replica first reads the stream, so whatever is appended after
/// that read reaches it. A replica so subscribes once, not once per stream, and a write of many streams wakes each
/// replica once. The message is the stream ids separated by spaces. It is a plain <c>PUBLISH</c>, which a
/// cluster delivers to subscribers on any node.
/// </remarks>
public static class WakeUps
{
    /// <summary>Separates the stream ids of one message.</summary>
    public const char Separator = ' ';

    /// <summary><see cref="Separator"/> as a string, for Lua.</summary>
    public const string SeparatorText = " ";
}
