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
    /// Yields batches of entries after <paramref name="afterId"/> (from the start when null), ending after
    /// the <c>end</c> entry. An empty batch means the heartbeat interval passed with nothing new.
    /// The sequence also ends when the stream no longer exists (expired or never created).
    /// </summary>
    public async IAsyncEnumerable<StreamEntry[]> TailAsync(string id, string? afterId,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var db = redis.GetDatabase();
        var key = RedisKeys.Tokens(id);
        var channel = RedisKeys.Wake(id);
        var subscriber = redis.GetSubscriber();
        var signal = new WakeSignal();
        Action<RedisChannel, RedisValue> onWake = (_, _) => signal.Set();

        // Subscribe before the first read, so nothing appended after that read goes unnoticed.
        await subscriber.SubscribeAsync(channel, onWake).WaitAsync(cancellationToken);
        try
        {
            RedisValue minId = afterId is null ? "-" : "(" + afterId;
            while (true)
            {
                signal.Reset();
                var entries = await db.StreamRangeAsync(key, minId, "+", ReadBatchSize).WaitAsync(cancellationToken);
                if (entries.Length > 0)
                {
                    yield return entries;
                    if (IsEnd(entries[^1]))
                    {
                        yield break;
                    }

                    minId = "(" + entries[^1].Id;
                    continue;
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
}
