using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Connects once to the Redis of <c>ConnectionStrings:redis</c> and stops the service, exit code 1, if Redis refuses
/// its password: the Redis client would otherwise retry for ever and the service sit there, never healthy, saying
/// nothing. A Redis that is not up yet is tried again until it answers.
/// </summary>
internal sealed partial class RedisPasswordCheck(IConfiguration configuration, IHostApplicationLifetime lifetime, ILogger<RedisPasswordCheck> logger)
    : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(2);

    private enum Answer { Accepted, Refused, Unreachable }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (configuration.GetConnectionString(RedisConnection.Name) is not { Length: > 0 } connectionString)
        {
            return;
        }

        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(connectionString);
        }
        catch (ArgumentException)
        {
            // The service's own Redis client reports a malformed connection string.
            return;
        }

        options.AbortOnConnectFail = true;
        options.ConnectRetry = 1;
        options.ConnectTimeout = 5_000;
        options.ClientName = "vixaspire-password-check";
        while (!stoppingToken.IsCancellationRequested)
        {
            var (answer, reason) = await AskAsync(options, stoppingToken);
            if (answer == Answer.Accepted)
            {
                return;
            }

            if (answer == Answer.Refused)
            {
                var scrubbed = Scrub(reason, options.Password);
                LogPasswordRefused(logger, scrubbed);
                Environment.ExitCode = 1;
                lifetime.StopApplication();
                return;
            }

            await Task.Delay(RetryDelay, stoppingToken);
        }
    }

    private static async Task<(Answer, string)> AskAsync(ConfigurationOptions options, CancellationToken cancellationToken)
    {
        try
        {
            // Bounded by ConnectTimeout; not abandoned on cancellation, so that the connection is always disposed.
            await using var connection = await ConnectionMultiplexer.ConnectAsync(options.Clone());
            await connection.GetDatabase().PingAsync().WaitAsync(cancellationToken);
            return (Answer.Accepted, "");
        }
        catch (RedisConnectionException ex) when (ex.FailureType == ConnectionFailureType.AuthenticationFailure || IsAuthenticationError(ex))
        {
            return (Answer.Refused, AuthenticationError(ex) ?? ex.FailureType.ToString());
        }
        catch (RedisServerException ex) when (IsAuthenticationError(ex))
        {
            return (Answer.Refused, ex.Message);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return (Answer.Unreachable, ex.GetType().Name);
        }
    }

    private static bool IsAuthenticationError(Exception ex) => AuthenticationError(ex) is not null;

    /// <summary>The server's NOAUTH or WRONGPASS reply, wherever the client wrapped it.</summary>
    private static string? AuthenticationError(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex.Message.Contains("WRONGPASS", StringComparison.Ordinal) || ex.Message.Contains("NOAUTH", StringComparison.Ordinal))
            {
                return ex.Message;
            }
        }

        return null;
    }

    private static string Scrub(string text, string? password) =>
        string.IsNullOrEmpty(password) ? text : text.Replace(password, "***", StringComparison.Ordinal);

    [LoggerMessage(EventId = 1, Level = LogLevel.Critical,
        Message = "Redis refused the password in ConnectionStrings:redis: {Reason}. Stopping: give the service Redis's password.")]
    private static partial void LogPasswordRefused(ILogger logger, string reason);
}
