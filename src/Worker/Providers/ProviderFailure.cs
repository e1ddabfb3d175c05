using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace VixAspire.Worker.Providers;

internal enum FailureKind
{
    /// <summary>HTTP 429.</summary>
    RateLimited,

    /// <summary>HTTP 503.</summary>
    Unavailable,

    /// <summary>No first chunk within the attempt's timeout.</summary>
    Timeout,

    /// <summary>Refused, reset or cut connection: no HTTP status.</summary>
    Connection,

    /// <summary>Any other 5xx, or 408.</summary>
    ServerError,

    /// <summary>A 4xx other than 408 and 429: the upstream is alive but refuses this request or our credentials.</summary>
    Rejected,

    /// <summary>A response the client library could not parse.</summary>
    Malformed,

    Other,
}

/// <summary>What went wrong with one attempt, as far as retry, fallback and the circuit breaker care.</summary>
internal readonly record struct ProviderFailure(FailureKind Kind, int? Status, TimeSpan? RetryAfter)
{
    private static readonly TimeSpan LongestRetryAfter = TimeSpan.FromDays(1);

    /// <summary>Worth another try of the same provider: rate limits, overload, timeouts and broken connections only.</summary>
    public bool Retryable => Kind is FailureKind.RateLimited or FailureKind.Unavailable or FailureKind.Timeout or FailureKind.Connection;

    /// <summary>Says something about the upstream's health (a refused request does not).</summary>
    public bool CountsAgainstUpstream => Kind is not FailureKind.Rejected;

    public static ProviderFailure Classify(Exception exception, bool attemptTimedOut)
    {
        if (attemptTimedOut)
        {
            return new(FailureKind.Timeout, null, null);
        }

        var connection = false;
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            switch (ex)
            {
                case ClientResultException { Status: > 0 } result:
                    return FromStatus(result.Status, RetryAfterOf(result));
                case HttpRequestException { StatusCode: { } status }:
                    return FromStatus((int)status, null);
                case JsonException or FormatException:
                    return new(FailureKind.Malformed, null, null);
                case OperationCanceledException or TimeoutException:
                    // Not our cancellation (callers filter that out): the client library's own network timeout.
                    return new(FailureKind.Timeout, null, null);
                case HttpRequestException or IOException or SocketException:
                    connection = true;
                    break;
            }
        }

        return new(connection ? FailureKind.Connection : FailureKind.Other, null, null);
    }

    private static ProviderFailure FromStatus(int status, TimeSpan? retryAfter) => status switch
    {
        (int)HttpStatusCode.TooManyRequests => new(FailureKind.RateLimited, status, retryAfter),
        (int)HttpStatusCode.ServiceUnavailable => new(FailureKind.Unavailable, status, retryAfter),
        (int)HttpStatusCode.RequestTimeout or >= 500 => new(FailureKind.ServerError, status, null),
        _ => new(FailureKind.Rejected, status, null),
    };

    /// <summary>OpenAI's <c>retry-after-ms</c>, else <c>Retry-After</c> in seconds or as an HTTP date.</summary>
    private static TimeSpan? RetryAfterOf(ClientResultException exception) =>
        exception.GetRawResponse()?.Headers is { } headers
            ? ParseRetryAfter(headers.TryGetValue("retry-after-ms", out var ms) ? ms : null,
                headers.TryGetValue("Retry-After", out var value) ? value : null, DateTimeOffset.UtcNow)
            : null;

    /// <summary>
    /// Reads a retry delay from header values; a malformed one is ignored, and a huge one is held to a day (far
    /// beyond any wait the worker accepts, so it still means "try the next fallback") rather than overflowing.
    /// </summary>
    internal static TimeSpan? ParseRetryAfter(string? milliseconds, string? retryAfter, DateTimeOffset now)
    {
        if (double.TryParse(milliseconds, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
        {
            return Bounded(ms);
        }

        if (string.IsNullOrWhiteSpace(retryAfter))
        {
            return null;
        }

        if (double.TryParse(retryAfter, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return Bounded(seconds * 1000);
        }

        return DateTimeOffset.TryParse(retryAfter, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? Bounded(Math.Max(0, (date - now).TotalMilliseconds))
            : null;
    }

    private static TimeSpan Bounded(double milliseconds) => TimeSpan.FromMilliseconds(Math.Min(milliseconds, LongestRetryAfter.TotalMilliseconds));
}
