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

    [LoggerMessage(6, LogLevel.Information, "Request {RequestId} ended: {Reason}, {Tokens} tokens")]
    public static partial void GenerationEnded(ILogger logger, string requestId, string reason, int tokens);

    [LoggerMessage(7, LogLevel.Warning, "Claimed request {RequestId} from a worker presumed dead")]
    public static partial void Claimed(ILogger logger, string requestId);

    [LoggerMessage(8, LogLevel.Information, "Shutting down before the first token of request {RequestId}: handed back to the queue")]
    public static partial void HandedOver(ILogger logger, string requestId);
}
