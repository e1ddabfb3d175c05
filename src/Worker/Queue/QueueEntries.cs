using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Request-queue entries: read into a <see cref="QueuedRequest"/>, renewed while their generation runs, and settled as
/// done (acknowledged and deleted) or handed back for another worker. Each call names the queue partition the entry
/// came from and touches no other key, so every call stays on one cluster slot.
/// </summary>
internal static class QueueEntries
{
    // Bounds how long one script call holds Redis when a worker runs many generations.
    private const int MaxRenewBatch = 500;

    /// <summary>Resets the idle time of those of <paramref name="entryIds"/> that are still pending for <paramref name="consumer"/>.</summary>
    public static async Task RenewAsync(IDatabase db, RedisKey queue, string consumer, RedisValue[] entryIds)
    {
        foreach (var batch in entryIds.Chunk(MaxRenewBatch))
        {
            await db.ScriptEvaluateAsync(QueueScripts.Renew, [queue], [RedisKeys.WorkersGroup, consumer, .. batch]);
        }
    }

    /// <summary>Acknowledges and deletes <paramref name="entryIds"/> in one command. Throws when Redis fails; unacknowledged, an entry is claimed later.</summary>
    public static Task AcknowledgeAsync(IDatabase db, RedisKey queue, RedisValue[] entryIds) =>
        db.ScriptEvaluateAsync(QueueScripts.Acknowledge, [queue], [RedisKeys.WorkersGroup, .. entryIds]);

    /// <summary>Puts the request back at the end of its queue partition as a new entry, then settles the old one.</summary>
    public static async Task HandBackAsync(IDatabase db, QueuedRequest request)
    {
        await db.StreamAddAsync(request.Queue, request.Fields);
        await AcknowledgeAsync(db, request.Queue, [request.EntryId]);
    }

    /// <summary>The request that <paramref name="entry"/> of <paramref name="queue"/> carries.</summary>
    public static QueuedRequest Read(RedisKey queue, StreamEntry entry) => new(
        queue,
        entry.Id,
        entry[StreamFields.RequestId].ToString(),
        (ReadOnlyMemory<byte>)entry[StreamFields.RequestBody],
        entry[StreamFields.TraceParent],
        entry[StreamFields.TraceState],
        entry[StreamFields.Client],
        entry.Values);
}
