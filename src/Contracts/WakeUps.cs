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

    private const string SeparatorText = " ";

    /// <summary>
    /// Lua that defines <c>vix_wake_add(wakes, clients, id)</c>, which notes stream <c>id</c> for every replica with a
    /// lease in <c>clients</c>, and <c>vix_wake_send(wakes)</c>, which publishes one message per replica. Prepend it to
    /// a script whose KEYS include the streams' clients keys.
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
