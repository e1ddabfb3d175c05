using System.Threading.Channels;
using StackExchange.Redis;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Reads the token streams this replica follows together. A read asked for while none is in flight goes out at
/// once; reads asked for while one is in flight wait for it and then go out together, as one <c>XREAD</c> over all
/// their streams (one per hash slot on a Redis Cluster, where a command may not span slots, sent pipelined). So a
/// replica that follows a thousand flowing streams sends a few commands per round trip instead of one per stream
/// per batch, and a lone stream waits for nothing.
/// </summary>
internal sealed class StreamReads : IAsyncDisposable
{
    /// <summary>Entries read per stream per read: bounds the memory one client holds however far behind it is.</summary>
    internal const int EntriesPerStream = 256;

    /// <summary>Most streams one command names, so one reply stays a bounded size.</summary>
    internal const int MaxStreamsPerCommand = 512;

    private static readonly RedisValue Beginning = "0-0";

    private readonly IConnectionMultiplexer _redis;
    private readonly Channel<Read> _asked = Channel.CreateUnbounded<Read>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _sending;

    public StreamReads(IConnectionMultiplexer redis)
    {
        _redis = redis;
        _sending = Task.Run(SendAsync);
    }

    /// <summary>The entries of <paramref name="key"/> after <paramref name="afterId"/> (from the start when null), at most <see cref="EntriesPerStream"/>.</summary>
    public Task<StreamEntry[]> ReadAsync(RedisKey key, RedisValue afterId, CancellationToken cancellationToken)
    {
        var read = new Read(key, afterId.IsNull ? Beginning : afterId);
        ObjectDisposedException.ThrowIf(!_asked.Writer.TryWrite(read), this);

        return read.Result.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _asked.Writer.TryComplete();
        await _sending;
    }

    private async Task SendAsync()
    {
        var reads = new List<Read>();
        var commands = new List<List<Read>>();
        while (await _asked.Reader.WaitToReadAsync())
        {
            while (_asked.Reader.TryRead(out var read))
            {
                reads.Add(read);
            }

            try
            {
                Group(reads, commands);
                var sent = new Task<RedisStream[]>[commands.Count];
                var db = _redis.GetDatabase();
                for (var i = 0; i < commands.Count; i++)
                {
                    sent[i] = Send(db, commands[i]);
                }

                for (var i = 0; i < commands.Count; i++)
                {
                    await Complete(sent[i], commands[i]);
                }
            }
            catch (Exception ex)
            {
                // Never leave a reader waiting: whatever went wrong, its own retry decides what comes next.
                foreach (var read in reads)
                {
                    read.Result.TrySetException(ex);
                }
            }

            reads.Clear();
            commands.Clear();
        }
    }

    private static Task<RedisStream[]> Send(IDatabase db, List<Read> command)
    {
        var positions = new StreamPosition[command.Count];
        for (var i = 0; i < command.Count; i++)
        {
            positions[i] = new StreamPosition(command[i].Key, command[i].AfterId);
        }

        try
        {
            return db.StreamReadAsync(positions, EntriesPerStream);
        }
        catch (Exception ex)
        {
            return Task.FromException<RedisStream[]>(ex);
        }
    }

    private static async Task Complete(Task<RedisStream[]> sent, List<Read> command)
    {
        RedisStream[] streams;
        try
        {
            streams = await sent;
        }
        catch (Exception ex)
        {
            foreach (var read in command)
            {
                read.Result.TrySetException(ex);
            }

            return;
        }

        // Keys are distinct within a command (see Group); streams with nothing new are left out of the reply.
        var found = new Dictionary<RedisKey, StreamEntry[]>(streams.Length);
        foreach (var stream in streams)
        {
            found[stream.Key] = stream.Entries;
        }

        foreach (var read in command)
        {
            read.Result.TrySetResult(found.GetValueOrDefault(read.Key, []));
        }
    }

    /// <summary>
    /// Splits reads into commands: one hash slot each on a cluster, at most <see cref="MaxStreamsPerCommand"/> streams,
    /// and no stream twice (two clients of one stream at different places read it in two commands).
    /// </summary>
    private void Group(List<Read> reads, List<List<Read>> commands)
    {
        var open = new Dictionary<int, List<(HashSet<RedisKey> Keys, List<Read> Reads)>>();
        foreach (var read in reads)
        {
            // The stream's slot on a cluster; -1 for every key on a standalone server, where one command takes them all.
            var slot = _redis.GetHashSlot(read.Key);
            if (!open.TryGetValue(slot, out var ofSlot))
            {
                open[slot] = ofSlot = [];
            }

            var command = ofSlot.FindIndex(c => c.Reads.Count < MaxStreamsPerCommand && !c.Keys.Contains(read.Key));
            if (command < 0)
            {
                command = ofSlot.Count;
                ofSlot.Add(([], []));
                commands.Add(ofSlot[command].Reads);
            }

            ofSlot[command].Keys.Add(read.Key);
            ofSlot[command].Reads.Add(read);
        }
    }

    private sealed record Read(RedisKey Key, RedisValue AfterId)
    {
        public TaskCompletionSource<StreamEntry[]> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
