namespace VixAspire.Worker;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Worker {Consumer} reads group {Group}")]
    public static partial void Consuming(ILogger logger, string consumer, string group);

    [LoggerMessage(2, LogLevel.Warning, "Request entry {EntryId} is malformed and was dropped")]
    public static partial void MalformedRequest(ILogger logger, string entryId);

    [LoggerMessage(3, LogLevel.Error, "Provider failed for request {RequestId}")]
    public static partial void ProviderFailed(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(4, LogLevel.Error, "Writing the token stream of request {RequestId} failed")]
    public static partial void StreamWriteFailed(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(5, LogLevel.Error, "Reading the request queue failed; retrying")]
    public static partial void QueueReadFailed(ILogger logger, Exception exception);

    // Debug: one line per request is hundreds a second per worker under load, and the span and the metrics carry it.
    [LoggerMessage(6, LogLevel.Debug, "Request {RequestId} ended: {Reason}, {Tokens} tokens")]
    public static partial void GenerationEnded(ILogger logger, string requestId, string reason, int tokens);

    [LoggerMessage(7, LogLevel.Warning, "Claimed request {RequestId} from a worker presumed dead")]
    public static partial void Claimed(ILogger logger, string requestId);

    [LoggerMessage(8, LogLevel.Information, "Shutting down before the first token of request {RequestId}: handed back to the queue")]
    public static partial void HandedOver(ILogger logger, string requestId);

    [LoggerMessage(9, LogLevel.Error, "Claiming orphaned requests failed; the next claim round follows")]
    public static partial void ClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Renewing this worker's pending requests failed; the next renewal follows")]
    public static partial void RenewFailed(ILogger logger, Exception exception);

    [LoggerMessage(12, LogLevel.Warning, "Request {RequestId} is written by another worker now: this run stops without settling its entry")]
    public static partial void Fenced(ILogger logger, string requestId);

    [LoggerMessage(13, LogLevel.Information, "Request {RequestId} has no token stream any more (expired or lost): dropped without calling a provider")]
    public static partial void StreamGone(ILogger logger, string requestId);

    [LoggerMessage(11, LogLevel.Warning, "Settling request entry {EntryId} failed; it stays pending until claimed")]
    public static partial void SettleFailed(ILogger logger, Exception exception, string entryId);

    [LoggerMessage(20, LogLevel.Warning, "Provider {Provider} failed before the first token of request {RequestId}: {Failure} (status {Status})")]
    public static partial void ProviderAttemptFailed(ILogger logger, Exception exception, string requestId, string provider, string failure, int status);

    [LoggerMessage(22, LogLevel.Warning, "Request {RequestId} falls back from model {From} to model {To}")]
    public static partial void FallingBack(ILogger logger, string requestId, string from, string to);

    [LoggerMessage(23, LogLevel.Warning, "Skipped provider {Provider} for request {RequestId}: its circuit is open")]
    public static partial void CircuitOpenSkipped(ILogger logger, string requestId, string provider);

    [LoggerMessage(26, LogLevel.Error, "No provider could serve request {RequestId} for model {Model}")]
    public static partial void ProvidersUnavailable(ILogger logger, string requestId, string model);

    [LoggerMessage(27, LogLevel.Warning, "Could not free the client's stream slot of request {RequestId}; it expires at the stream's deadline")]
    public static partial void ClientSlotReleaseFailed(ILogger logger, Exception exception, string requestId);
}
