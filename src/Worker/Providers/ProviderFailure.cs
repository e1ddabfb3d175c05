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

    /// <summary>Skipped: the upstream's circuit is open.</summary>
    CircuitOpen,

    Other,
}

/// <summary>What went wrong with one attempt, as far as retry, fallback and the circuit breaker care.</summary>
internal readonly record struct ProviderFailure(FailureKind Kind, int? Status, TimeSpan? RetryAfter)
{
    /// <summary>Worth another try of the same provider: rate limits, overload, timeouts and broken connections only.</summary>
    public bool Retryable => Kind is FailureKind.RateLimited or FailureKind.Unavailable or FailureKind.Timeout or FailureKind.Connection;

    /// <summary>Says something about the upstream's health (a refused request does not).</summary>
    public bool CountsAgainstUpstream => Kind is not (FailureKind.Rejected or FailureKind.CircuitOpen);

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
    private static TimeSpan? RetryAfterOf(ClientResultException exception)
    {
        if (exception.GetRawResponse()?.Headers is not { } headers)
        {
            return null;
        }

        if (headers.TryGetValue("retry-after-ms", out var ms)
            && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var milliseconds) && milliseconds >= 0)
        {
            return TimeSpan.FromMilliseconds(milliseconds);
        }

        if (!headers.TryGetValue("Retry-After", out var value) || string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? TimeSpan.FromTicks(Math.Max(0, (date - DateTimeOffset.UtcNow).Ticks))
            : null;
    }
}
