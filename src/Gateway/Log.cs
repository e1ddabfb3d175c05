namespace VixAspire.Gateway;

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Refused a request to {Path}: its API key is not valid")]
    public static partial void ApiKeyRejected(ILogger logger, PathString path);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Authenticated client {Client}")]
    public static partial void ClientAuthenticated(ILogger logger, string client);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rate limited {Client} on {Path}")]
    public static partial void RateLimited(ILogger logger, string client, PathString path);

    [LoggerMessage(Level = LogLevel.Information, Message = "At capacity ({Limit} streams): refused a request to {Path}")]
    public static partial void Overloaded(ILogger logger, int limit, PathString path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused a body over {Limit} bytes on {Path}")]
    public static partial void BodyTooLarge(ILogger logger, long limit, PathString path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused a request to {Path}: the value of its header {Header} is not ASCII")]
    public static partial void HeaderNotAscii(ILogger logger, string header, PathString path);

    [LoggerMessage(Level = LogLevel.Information, Message = "The request body sent to {Path} was not received in full ({Error}): answered 400")]
    public static partial void IncompleteBody(ILogger logger, PathString path, Yarp.ReverseProxy.Forwarder.ForwarderError error);
}
