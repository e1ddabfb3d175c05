namespace VixAspire.Contracts.Scripts;

/// <summary>The Lua a writer runs to wake the API replicas that follow its streams (<see cref="WakeUps"/>).</summary>
public static class WakeUpScripts
{
    private const string SeparatorText = WakeUps.SeparatorText;

    /// <summary>
    /// Defines <c>vix_wake_add(wakes, clients, id)</c>, which notes stream <c>id</c> for every replica with a lease in
    /// <c>clients</c>, and <c>vix_wake_send(wakes)</c>, which publishes one message per replica. Prepend it to a script
    /// whose KEYS include the streams' clients keys.
    /// </summary>
    public const string Functions = $$"""
        local function vix_wake_add(wakes, clients, id)
          for _, member in ipairs(redis.call('ZRANGE', clients, 0, -1)) do
            local replica = string.match(member, '^([^:]+):')
            if replica then
              local ids = wakes[replica]
              if ids == nil then
                ids = {}
                wakes[replica] = ids
              end
              if ids[#ids] ~= id then ids[#ids + 1] = id end
            end
          end
        end
        local function vix_wake_send(wakes)
          for replica, ids in pairs(wakes) do
            redis.call('PUBLISH', '{{RedisKeys.ReplicaWakePrefix}}' .. replica, table.concat(ids, '{{SeparatorText}}'))
          end
        end

        """;
}
