using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Queue;

/// <summary>Settling request-queue entries: done (acknowledged and deleted) or handed back for another worker.</summary>
internal static class QueueEntries
{
    /// <summary>Acknowledges and deletes the entry in one round trip: the queue holds only unfinished work.</summary>
    public static async Task AcknowledgeAsync(IDatabase db, RedisValue entryId)
    {
        var batch = db.CreateBatch();
        var ack = batch.StreamAcknowledgeAsync(RedisKeys.Requests, RedisKeys.WorkersGroup, entryId);
        var delete = batch.StreamDeleteAsync(RedisKeys.Requests, [entryId]);
        batch.Execute();
        try
        {
            await Task.WhenAll(ack, delete);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Unacknowledged, the entry is claimed later and settled by whoever claims it: no stream is lost.
        }
    }

    /// <summary>Puts the request back at the end of the queue as a new entry, then settles the old one.</summary>
    public static async Task HandBackAsync(IDatabase db, StreamEntry entry)
    {
        await db.StreamAddAsync(RedisKeys.Requests, entry.Values);
        await AcknowledgeAsync(db, entry.Id);
    }
}
