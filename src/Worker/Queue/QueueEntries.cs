using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Settling request-queue entries: done (acknowledged and deleted) or handed back for another worker. Each call names
/// the queue partition the entry came from and touches no other key, so every call stays on one cluster slot.
/// </summary>
internal static class QueueEntries
{
    // KEYS[1] queue partition; ARGV[1] group, ARGV[2] consumer, then entry ids. Resets the idle time of the ids still
    // pending for this consumer only: one that another worker claimed meanwhile (this one looked dead) stays
    // theirs, where a plain XCLAIM would take it back and run it twice.
    private const string RenewScript = """
        local renewed = 0
        for i = 3, #ARGV do
          if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
            renewed = renewed + 1
          end
        end
        return renewed
        """;

    // Bounds how long one script call holds Redis when a worker runs many generations.
    private const int MaxRenewBatch = 500;

    /// <summary>Resets the idle time of those of <paramref name="entryIds"/> that are still pending for <paramref name="consumer"/>.</summary>
    public static async Task RenewAsync(IDatabase db, RedisKey queue, string consumer, RedisValue[] entryIds)
    {
        foreach (var batch in entryIds.Chunk(MaxRenewBatch))
        {
            await db.ScriptEvaluateAsync(RenewScript, [queue], [RedisKeys.WorkersGroup, consumer, .. batch]);
        }
    }

    // KEYS[1] queue partition; ARGV[1] group, then entry ids. Acknowledged and deleted together: the queue holds only
    // unfinished work.
    private const string AcknowledgeScript = """
        redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
        return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
        """;

    /// <summary>Acknowledges and deletes <paramref name="entryIds"/> in one command. Throws when Redis fails; unacknowledged, an entry is claimed later.</summary>
    public static Task AcknowledgeAsync(IDatabase db, RedisKey queue, RedisValue[] entryIds) =>
        db.ScriptEvaluateAsync(AcknowledgeScript, [queue], [RedisKeys.WorkersGroup, .. entryIds]);

    /// <summary>Puts the request back at the end of its queue partition as a new entry, then settles the old one.</summary>
    public static async Task HandBackAsync(IDatabase db, RedisKey queue, StreamEntry entry)
    {
        await db.StreamAddAsync(queue, entry.Values);
        await AcknowledgeAsync(db, queue, [entry.Id]);
    }
}
