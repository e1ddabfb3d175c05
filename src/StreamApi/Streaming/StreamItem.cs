using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

internal enum StreamItemKind : byte
{
    /// <summary>Nothing new for a heartbeat interval: a sign of life, carrying no event.</summary>
    Heartbeat,
    Token,

    /// <summary>A tool call's fragment: the answer, like a token.</summary>
    ToolCall,

    /// <summary>A fragment of reasoning: the answer, like a token.</summary>
    Reasoning,
    Error,
    End,

    /// <summary>Any other event (<c>start</c>, or one a newer worker writes), passed on as it is.</summary>
    Other,
}

/// <summary>
/// One thing a client following a stream is told. A stored event carries its entry id, event name and envelope as
/// the bytes Redis returned; an event the API makes itself (the error and end of a lost stream) has no id.
/// </summary>
internal readonly struct StreamItem(StreamItemKind kind, ReadOnlyMemory<byte> id, ReadOnlyMemory<byte> name, ReadOnlyMemory<byte> envelope)
{
    public static StreamItem Heartbeat => default;

    public StreamItemKind Kind => kind;

    /// <summary>The entry id, the SSE <c>id:</c> a client resumes after; empty for the API's own events.</summary>
    public ReadOnlyMemory<byte> Id => id;

    public ReadOnlyMemory<byte> Name => name;

    public ReadOnlyMemory<byte> Envelope => envelope;

    public static StreamItem Local(StreamItemKind kind, string name, byte[] envelope) =>
        new(kind, ReadOnlyMemory<byte>.Empty, System.Text.Encoding.UTF8.GetBytes(name), envelope);

    /// <summary>False for an entry without an event name or data, which no protocol can send.</summary>
    public static bool TryRead(StreamEntry entry, out StreamItem item)
    {
        var name = entry[StreamFields.Event];
        var data = entry[StreamFields.Data];
        if (name.IsNull || data.IsNull)
        {
            item = default;
            return false;
        }

        item = new(KindOf(name), (ReadOnlyMemory<byte>)entry.Id, (ReadOnlyMemory<byte>)name, (ReadOnlyMemory<byte>)data);
        return true;
    }

    /// <summary>Text, reasoning or a tool call: what the time to first token waits for.</summary>
    public static bool IsAnswer(StreamItemKind kind) => kind is StreamItemKind.Token or StreamItemKind.ToolCall or StreamItemKind.Reasoning;

    public static StreamItemKind KindOf(RedisValue name) =>
        name == EventNames.Token ? StreamItemKind.Token
        : name == EventNames.ToolCall ? StreamItemKind.ToolCall
        : name == EventNames.Reasoning ? StreamItemKind.Reasoning
        : name == EventNames.End ? StreamItemKind.End
        : name == EventNames.Error ? StreamItemKind.Error
        : StreamItemKind.Other;
}

/// <summary>
/// Items to write together and flush once: the entries of one read from Redis, a heartbeat, or an ending the API
/// writes itself. Enumerating it allocates nothing; entries that cannot be sent are passed over.
/// </summary>
internal readonly struct StreamBatch
{
    public static readonly StreamBatch Heartbeat = new([StreamItem.Heartbeat]);

    private readonly StreamEntry[]? _entries;
    private readonly StreamItem[]? _items;

    public StreamBatch(StreamEntry[] entries) => _entries = entries;

    private StreamBatch(StreamItem[] items) => _items = items;

    /// <summary>
    /// An error then an end (reason <c>error</c>), for a stream the API can no longer follow; after
    /// <paramref name="start"/> when the client has not had its <c>start</c> yet (the stream was lost before it was
    /// read), so that every stream still begins with <c>start</c>.
    /// </summary>
    public static StreamBatch Ending(byte[] error, byte[]? start = null)
    {
        StreamItem[] ending =
        [
            StreamItem.Local(StreamItemKind.Error, EventNames.Error, error),
            StreamItem.Local(StreamItemKind.End, EventNames.End, Envelopes.End(EndReasons.Error, 0)),
        ];
        return new(start is null ? ending : [StreamItem.Local(StreamItemKind.Other, EventNames.Start, start), .. ending]);
    }

    public Enumerator GetEnumerator() => new(_entries, _items);

    public struct Enumerator(StreamEntry[]? entries, StreamItem[]? items)
    {
        private int _index = -1;

        public StreamItem Current { get; private set; }

        public bool MoveNext()
        {
            var count = entries?.Length ?? items?.Length ?? 0;
            while (++_index < count)
            {
                if (items is not null)
                {
                    Current = items[_index];
                    return true;
                }

                if (StreamItem.TryRead(entries![_index], out var item))
                {
                    Current = item;
                    return true;
                }
            }

            return false;
        }
    }
}
