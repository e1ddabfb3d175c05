namespace VixAspire.Contracts.Scripts;

/// <summary>The Lua of attach leases (<see cref="AttachLeases"/>), which the API's grace check and the worker's append both run.</summary>
public static class AttachLeaseScripts
{
    /// <summary>
    /// Defines <c>vix_now()</c> (<see cref="CommonScripts.Now"/>) and <c>vix_abandoned(clients, left, grace_ms)</c>:
    /// true when no lease is live and the last client left, or its lease ran out, at least the grace ago. Prepend it
    /// to a script whose KEYS include the request's clients and left keys.
    /// </summary>
    public const string Functions = CommonScripts.Now + """
        local function vix_abandoned(clients, left, grace)
          local now = vix_now()
          if redis.call('ZCOUNT', clients, '(' .. now, '+inf') > 0 then return false end
          local since = tonumber(redis.call('GET', left) or '0')
          local expired = redis.call('ZREVRANGEBYSCORE', clients, now, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
          if #expired > 0 then since = math.max(since, tonumber(expired[2])) end
          return since > 0 and now - since >= tonumber(grace)
        end

        """;
}
