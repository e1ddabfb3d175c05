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
}
