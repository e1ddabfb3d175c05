using StackExchange.Redis;

namespace VixAspire.Contracts;

/// <summary>
/// Every Redis key and channel the system uses, built in one place. Per-request keys carry the
/// request id as a hash tag (<c>{id}</c>) so that one request's keys live on one cluster shard.
/// </summary>
public static class RedisKeys
{
    /// <summary>The request queue: a stream read by the <see cref="WorkersGroup"/> consumer group, when it has one partition.</summary>
    public static readonly RedisKey Requests = "vix:requests";

    /// <summary>
    /// Partition <paramref name="index"/> of a queue with several (see <see cref="RedisTopology"/>): its own hash tag
    /// (<c>{q0}</c>, <c>{q1}</c>, ...) puts each partition on its own cluster slot.
    /// </summary>
    public static RedisKey RequestPartition(int index) => $"vix:{{q{index}}}:requests";

    public const string WorkersGroup = "workers";

    /// <summary>Cancellation broadcast: the message is the request id.</summary>
    public static readonly RedisChannel Cancellations = RedisChannel.Literal("vix:cancel");

    /// <summary>The token stream of one request: start, tokens, error, end.</summary>
    public static RedisKey Tokens(string id) => $"vix:{{{id}}}:tokens";

    /// <summary>Prefix of <see cref="ReplicaWake"/>, for Lua.</summary>
    public const string ReplicaWakePrefix = "vix:wake:";

    /// <summary>An API replica's wake-ups: the ids of streams it follows that have new entries (see <see cref="WakeUps"/>).</summary>
    public static RedisChannel ReplicaWake(string replica) => RedisChannel.Literal(ReplicaWakePrefix + replica);

    /// <summary>Set when a request is cancelled, so a worker that picks it up later still sees it.</summary>
    public static RedisKey Cancelled(string id) => $"vix:{{{id}}}:cancelled";

    /// <summary>
    /// Clients of the stream across all API replicas: a sorted set of attach leases scored by expiry (see
    /// <see cref="AttachLeases"/>).
    /// </summary>
    public static RedisKey Clients(string id) => $"vix:{{{id}}}:clients";

    /// <summary>When the stream's last client left (Unix ms), for the disconnect grace.</summary>
    public static RedisKey Left(string id) => $"vix:{{{id}}}:left";

    /// <summary>
    /// The fence of the stream's writer: field <c>o</c>, the generation that may append (once the stream ended,
    /// <c>~</c> and that generation, which no writer matches, yet which still tells it that a retried end was
    /// applied), and <c>s</c>, the last batch it applied, so a retried batch is not appended twice.
    /// </summary>
    public static RedisKey Writer(string id) => $"vix:{{{id}}}:writer";

    /// <summary>
    /// The API key name that created the stream, when keys are configured: only that key may read or cancel it.
    /// Expires with the token stream.
    /// </summary>
    public static RedisKey Owner(string id) => $"vix:{{{id}}}:owner";

    /// <summary>
    /// Generations (member: stream id, held until the stream ends) and attachments (member: <c>attach:...</c>, held
    /// while attached) of a client (API key or address), scored by deadline, for the per-client concurrency limit.
    /// </summary>
    public static RedisKey ClientStreams(string client) => $"vix:client:{{{client}}}:streams";
}
