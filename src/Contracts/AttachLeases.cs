namespace VixAspire.Contracts;

/// <summary>
/// Who follows a stream, across API replicas, kept so that anyone (the API's grace check, a worker's append)
/// can tell a stream nobody follows any more, even when the replica that served its clients died.
/// </summary>
/// <remarks>
/// <para><see cref="RedisKeys.Clients"/> is a sorted set: one member per attached client (an id the replica made),
/// scored by its lease expiry in Unix milliseconds (Redis's clock). The replica renews its leases while the client
/// stays; detaching removes the member and, when no live lease is left, records the time in
/// <see cref="RedisKeys.Left"/>. A replica that dies renews nothing, so its leases simply run out.</para>
/// <para>A stream is abandoned when no lease is live and the last client left, or its lease ran out, at least the
/// disconnect grace ago.</para>
/// </remarks>
public static class AttachLeases
{
    /// <summary>How long a lease lasts without renewal: a replica renews at every heartbeat, so two may be missed.</summary>
    public static TimeSpan Duration(StreamingOptions options) => options.HeartbeatInterval * 2.5;
}
