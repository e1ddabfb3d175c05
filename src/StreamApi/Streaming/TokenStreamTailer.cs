using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Follows one token stream: reads what is there, then sleeps until the stream's wake channel fires,
/// and reads again from the last id it returned. An idle stream costs no Redis command but a rare
/// existence check at each heartbeat.
/// </summary>
internal sealed class TokenStreamTailer(IConnectionMultiplexer redis, IOptionsMonitor<StreamingOptions> options)
{
    /// <summary>Entries read per round trip: bounds the memory one client holds however far behind it is.</summary>
    internal const int ReadBatchSize = 256;

    /// <summary>
    /// Yields batches of entries after <paramref name="afterId"/> (from the start when null), the last batch
    /// ending with the <c>end</c> entry. An empty batch means the heartbeat interval passed with nothing new.
    /// The sequence also ends when the stream no longer exists (expired or never created), or when the client
    /// resumes after the end itself (<see cref="TailProgress.EndedBefore"/>).
    /// </summary>
    public async IAsyncEnumerable<StreamEntry[]> TailAsync(string id, string? afterId, TailProgress progress,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var db = redis.GetDatabase();
        var key = RedisKeys.Tokens(id);
        var channel = RedisKeys.Wake(id);
        var subscriber = redis.GetSubscriber();
        var signal = new WakeSignal();
        Action<RedisChannel, RedisValue> onWake = (_, _) => signal.Set();
        try
        {
            // Subscribe before the first read, so nothing appended after that read goes unnoticed. Not
            // cancellable: once sent, the subscription must exist for the finally to remove it.
            await subscriber.SubscribeAsync(channel, onWake);
            RedisValue minId = afterId is null ? "-" : "(" + afterId;
            var first = true;
            while (true)
            {
                signal.Reset();
                var entries = await db.StreamRangeAsync(key, minId, "+", ReadBatchSize).WaitAsync(cancellationToken);
                if (entries.Length > 0)
                {
                    first = false;
                    var end = Array.FindIndex(entries, IsEnd);
                    if (end >= 0)
                    {
                        yield return end == entries.Length - 1 ? entries : entries[..(end + 1)];
                        yield break;
                    }

                    yield return entries;
                    minId = "(" + entries[^1].Id;
                    continue;
                }

                if (first && afterId is not null)
                {
                    first = false;
                    // Resuming after the last event: when that was the end, there is nothing left to wait for.
                    var last = await db.StreamRangeAsync(key, "-", "+", 1, Order.Descending).WaitAsync(cancellationToken);
                    if (last.Length > 0 && IsEnd(last[0]))
                    {
                        progress.EndedBefore = true;
                        yield break;
                    }
                }

                if (!await signal.WaitAsync(options.CurrentValue.HeartbeatInterval, cancellationToken))
                {
                    if (!await db.KeyExistsAsync(key).WaitAsync(cancellationToken))
                    {
                        yield break;
                    }

                    yield return [];
                }
            }
        }
        finally
        {
            subscriber.Unsubscribe(channel, onWake, CommandFlags.FireAndForget);
        }
    }

    internal static bool IsEnd(StreamEntry entry) => entry[StreamFields.Event] == EventNames.End;

    /// <summary>The reason of an end entry (for telemetry), read from its envelope.</summary>
    internal static string EndReason(StreamEntry end) =>
        EnvelopeFields.String(((ReadOnlyMemory<byte>)end[StreamFields.Data]).Span, "reason"u8) ?? "unknown";
}

/// <summary>What a tail learned besides its entries.</summary>
internal sealed class TailProgress
{
    /// <summary>The client resumed after the stream's end event: the stream is complete for it.</summary>
    public bool EndedBefore { get; set; }
}
