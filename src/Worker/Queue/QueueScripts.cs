namespace VixAspire.Worker.Queue;

/// <summary>The Lua that settles and renews request-queue entries (<see cref="QueueEntries"/>); each touches one partition only.</summary>
internal static class QueueScripts
{
    /// <summary>
    /// KEYS[1] queue partition; ARGV[1] group, ARGV[2] consumer, then entry ids. Resets the idle time of the ids still
    /// pending for this consumer only: one that another worker claimed meanwhile (this one looked dead) stays theirs,
    /// where a plain <c>XCLAIM</c> would take it back and run it twice. Returns how many it renewed.
    /// </summary>
    public const string Renew = """
        local renewed = 0
        for i = 3, #ARGV do
          if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
            renewed = renewed + 1
          end
        end
        return renewed
        """;

    /// <summary>
    /// KEYS[1] queue partition; ARGV[1] group, then entry ids. Acknowledged and deleted together: the queue holds only
    /// unfinished work. Returns how many it deleted.
    /// </summary>
    public const string Acknowledge = """
        redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
        return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
        """;
}
