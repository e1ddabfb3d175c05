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
    /// <summary>
    /// Lua that defines <c>vix_now()</c> (ms) and <c>vix_abandoned(clients, left, grace_ms)</c>; prepend it to a
    /// script whose KEYS include the request's clients and left keys.
    /// </summary>
    public const string Functions = """
        local function vix_now()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function vix_abandoned(clients, left, grace)
          local now = vix_now()
          if redis.call('ZCOUNT', clients, '(' .. now, '+inf') > 0 then return false end
          local since = tonumber(redis.call('GET', left) or '0')
          local expired = redis.call('ZREVRANGEBYSCORE', clients, now, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
          if #expired > 0 then since = math.max(since, tonumber(expired[2])) end
          return since > 0 and now - since >= tonumber(grace)
        end

        """;

    /// <summary>How long a lease lasts without renewal: a replica renews at every heartbeat, so two may be missed.</summary>
    public static TimeSpan Duration(StreamingOptions options) => options.HeartbeatInterval * 2.5;
}
