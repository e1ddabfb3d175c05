namespace VixAspire.StreamApi;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Client left stream {StreamId}")]
    public static partial void ClientDisconnected(ILogger logger, string streamId);

    [LoggerMessage(2, LogLevel.Error, "Reading token stream {StreamId} failed")]
    public static partial void TailFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(3, LogLevel.Information, "No client attached to stream {StreamId} for the disconnect grace: cancelled")]
    public static partial void AbandonedStreamCancelled(ILogger logger, string streamId);

    [LoggerMessage(4, LogLevel.Warning, "Disconnect-grace check of stream {StreamId} failed")]
    public static partial void GraceCheckFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(5, LogLevel.Warning, "Attach bookkeeping of stream {StreamId} failed")]
    public static partial void AttachFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(7, LogLevel.Warning, "Detach bookkeeping of stream {StreamId} failed")]
    public static partial void DetachFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(8, LogLevel.Warning, "Releasing the client's slot for stream {StreamId} failed")]
    public static partial void SlotReleaseFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(9, LogLevel.Warning, "Redis could not be reached: request refused with 503")]
    public static partial void RequestRefusedRedisUnreachable(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Debug, "The host is stopping: stream {StreamId} closed without its end, for the client to resume elsewhere")]
    public static partial void StreamClosedForShutdown(ILogger logger, string streamId);

    [LoggerMessage(20, LogLevel.Debug, "WebSocket closed by the client with status {Status}")]
    public static partial void WebSocketClosed(ILogger logger, int? status);

    [LoggerMessage(21, LogLevel.Debug, "WebSocket connection lost")]
    public static partial void WebSocketLost(ILogger logger, Exception exception);

    [LoggerMessage(22, LogLevel.Information, "WebSocket message over {Limit} bytes: closing the socket with 1009")]
    public static partial void WebSocketMessageTooBig(ILogger logger, int limit);

    [LoggerMessage(23, LogLevel.Debug, "WebSocket message rejected: {Reason}")]
    public static partial void WebSocketMessageRejected(ILogger logger, string reason);

    [LoggerMessage(24, LogLevel.Error, "Starting a WebSocket request failed")]
    public static partial void WebSocketStartFailed(ILogger logger, Exception exception);

    [LoggerMessage(25, LogLevel.Warning, "Cancelling stream {StreamId} from a WebSocket failed")]
    public static partial void WebSocketCancelFailed(ILogger logger, Exception exception, string streamId);

    [LoggerMessage(26, LogLevel.Error, "WebSocket request on stream {StreamId} failed")]
    public static partial void WebSocketRequestFailed(ILogger logger, Exception exception, string? streamId);

    [LoggerMessage(6, LogLevel.Debug, "Sampling the request queue failed")]
    public static partial void QueueSampleFailed(ILogger logger, Exception exception);
}
