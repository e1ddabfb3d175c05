using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.Worker.Queue;

/// <summary>
/// This worker's membership of the <c>workers</c> consumer group of every queue partition: the group made when
/// missing (at start, and again when Redis lost it), and this consumer removed on shutdown when nothing is pending.
/// </summary>
internal sealed class ConsumerGroup(IConnectionMultiplexer redis, ILogger<ConsumerGroup> logger)
{
    /// <summary>Hex digits of a random suffix that keep consumer names unique across restarts of one process id.</summary>
    private const int ConsumerSuffixLength = 8;

    /// <summary>This worker's consumer name in every partition's group.</summary>
    public string Consumer { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..^(32 - ConsumerSuffixLength)];

    /// <summary>True when <paramref name="ex"/> says the partition has no group (lost with Redis's data).</summary>
    public static bool IsMissing(Exception ex) => ex.Message.Contains("NOGROUP", StringComparison.Ordinal);

    /// <summary>Creates the group of <paramref name="queue"/>, and the stream, unless they exist. Throws when Redis fails.</summary>
    public async Task EnsureAsync(RedisKey queue)
    {
        try
        {
            // From 0, not $: requests queued before the first worker started are served too.
            await redis.GetDatabase().StreamCreateConsumerGroupAsync(queue, RedisKeys.WorkersGroup, "0-0", createStream: true);
        }
        catch (RedisServerException ex) when (ex.Message.Contains("BUSYGROUP", StringComparison.Ordinal))
        {
            // Another worker created it first.
        }
    }

    /// <summary>Recreates the consumer group (lost with Redis's data); false when Redis did not answer.</summary>
    public async Task<bool> TryRecreateAsync(RedisKey queue)
    {
        try
        {
            await EnsureAsync(queue);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.QueueReadFailed(logger, ex);
            return false;
        }
    }

    /// <summary>
    /// A consumer with nothing pending leaves the group, so worker restarts do not pile up consumers. One with
    /// pending entries stays: deleting it would drop them, and another worker will claim them.
    /// </summary>
    public async Task LeaveIfIdleAsync(RedisKey queue)
    {
        var db = redis.GetDatabase();
        try
        {
            var consumers = await db.StreamConsumerInfoAsync(queue, RedisKeys.WorkersGroup);
            if (consumers.Any(c => c.Name == Consumer && c.PendingMessageCount == 0))
            {
                await db.StreamDeleteConsumerAsync(queue, RedisKeys.WorkersGroup, Consumer);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.QueueReadFailed(logger, ex);
        }
    }
}
