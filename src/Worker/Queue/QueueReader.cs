using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// Reads new requests of one queue partition through the <c>workers</c> group with <c>XREADGROUP</c>, blocking or
/// not, on a connection of its own: a blocking call would stall the shared multiplexer, and blocking reads sharing a
/// connection would wait on each other.
/// </summary>
/// <remarks>
/// The connection speaks RESP2 and the reply is parsed here (<see cref="Parse"/>), since the client's own stream
/// read has no <c>BLOCK</c>.
/// </remarks>
internal sealed class QueueReader : IAsyncDisposable
{
    /// <summary>Added to the blocking read's BLOCK for the client's own timeout, so a slow answer is not taken for a dead connection.</summary>
    private static readonly TimeSpan BlockingReadMargin = TimeSpan.FromSeconds(5);

    private readonly ConnectionMultiplexer _connection;
    private readonly IDatabase _db;
    private readonly string _consumer;
    private readonly long _blockMilliseconds;

    private QueueReader(ConnectionMultiplexer connection, RedisKey queue, string consumer, TimeSpan blockTimeout)
    {
        _connection = connection;
        _db = connection.GetDatabase();
        Queue = queue;
        _consumer = consumer;
        _blockMilliseconds = (long)blockTimeout.TotalMilliseconds;
    }

    /// <summary>The queue partition this reader reads.</summary>
    public RedisKey Queue { get; }

    /// <summary>Connects a reader of <paramref name="queue"/> for <paramref name="consumer"/>, whose reads block up to <paramref name="blockTimeout"/>.</summary>
    public static async Task<QueueReader> ConnectAsync(IConfiguration configuration, RedisKey queue, string consumer, TimeSpan blockTimeout)
    {
        var connectionString = configuration.GetConnectionString(RedisConnection.Name)
            ?? throw new InvalidOperationException("ConnectionStrings:redis is not set.");
        var config = ConfigurationOptions.Parse(connectionString);
        config.Protocol = RedisProtocol.Resp2;
        config.AbortOnConnectFail = false;
        config.ClientName = $"vix-worker-block-{Environment.ProcessId}-{queue}";
        config.AsyncTimeout = (int)(blockTimeout + BlockingReadMargin).TotalMilliseconds;
        return new QueueReader(await ConnectionMultiplexer.ConnectAsync(config), queue, consumer, blockTimeout);
    }

    /// <summary>
    /// Up to <paramref name="count"/> new requests, waiting up to the block timeout for the first when
    /// <paramref name="block"/> (not at all otherwise). The key goes as a <see cref="RedisKey"/>, so that in a cluster
    /// the command is sent to the partition's shard.
    /// </summary>
    public async Task<QueuedRequest[]> ReadAsync(int count, bool block)
    {
        List<object> args = ["GROUP", RedisKeys.WorkersGroup, _consumer, "COUNT", count];
        if (block)
        {
            args.AddRange(["BLOCK", _blockMilliseconds]);
        }

        args.AddRange(["STREAMS", Queue, ">"]);
        var entries = Parse(await _db.ExecuteAsync("XREADGROUP", args, CommandFlags.None));
        return Array.ConvertAll(entries, entry => QueueEntries.Read(Queue, entry));
    }

    /// <summary>Parses a RESP2 <c>XREADGROUP</c> reply for one stream: <c>[[name, [[id, [field, value, ...]], ...]]]</c>, or nil.</summary>
    internal static StreamEntry[] Parse(RedisResult result)
    {
        if (result.IsNull || result.Length == 0)
        {
            return [];
        }

        var entries = result[0][1];
        var parsed = new StreamEntry[entries.Length];
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i];
            var fields = entry[1];
            var values = new NameValueEntry[fields.IsNull ? 0 : fields.Length / 2];
            for (var f = 0; f < values.Length; f++)
            {
                values[f] = new NameValueEntry((RedisValue)fields[2 * f], (RedisValue)fields[2 * f + 1]);
            }

            parsed[i] = new StreamEntry((RedisValue)entry[0], values);
        }

        return parsed;
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
