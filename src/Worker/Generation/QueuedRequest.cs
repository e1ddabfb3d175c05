using StackExchange.Redis;

namespace VixAspire.Worker.Generation;

/// <summary>
/// A request as its queue entry carries it, read by the queue before a generation runs it. Ids and body are empty
/// when the entry lacks them; the runner drops such an entry as malformed.
/// </summary>
/// <param name="Queue">The queue partition the entry is in, where it is settled.</param>
/// <param name="EntryId">The entry's id in <paramref name="Queue"/>.</param>
/// <param name="RequestId">The request, whose token stream the generation writes.</param>
/// <param name="Body">The <see cref="Contracts.InferenceRequest"/> as UTF-8 JSON.</param>
/// <param name="TraceParent">The W3C trace the generation continues, if any.</param>
/// <param name="TraceState">The W3C trace state that goes with it, if any.</param>
/// <param name="Client">The client whose concurrent-stream slot the request holds, if any.</param>
/// <param name="Fields">The entry's fields as queued, so that a hand-back queues exactly what was queued.</param>
internal sealed record QueuedRequest(
    RedisKey Queue,
    RedisValue EntryId,
    string RequestId,
    ReadOnlyMemory<byte> Body,
    string? TraceParent,
    string? TraceState,
    string? Client,
    NameValueEntry[] Fields);
