namespace VixAspire.StreamApi;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Client left stream {StreamId}")]
    public static partial void ClientDisconnected(ILogger logger, string streamId);

    [LoggerMessage(2, LogLevel.Error, "Reading token stream {StreamId} failed")]
    public static partial void TailFailed(ILogger logger, Exception exception, string streamId);
}
