using VixAspire.Contracts;

namespace VixAspire.Gateway;

/// <summary>
/// The gateway's own refusals (400, 401, 413, 429, 503), in the format of the API behind the route: RFC 7807 problem
/// details on <c>/infer</c> and everywhere else, OpenAI's error object on <c>/v1</c>, as StreamApi answers.
/// </summary>
internal static class GatewayErrors
{
    public static bool IsOpenAi(HttpRequest request) => request.Path.StartsWithSegments("/v1");

    public static Task WriteAsync(HttpContext context, GatewayError error)
    {
        if (IsOpenAi(context.Request))
        {
            var body = new OpenAiError(new OpenAiErrorBody(error.Detail, error.OpenAiType, null, error.Code));
            return TypedResults.Json(body, OpenAiErrorJsonContext.Default.OpenAiError, statusCode: error.Status).ExecuteAsync(context);
        }

        return TypedResults.Problem(detail: error.Detail, statusCode: error.Status, title: error.Title).ExecuteAsync(context);
    }
}

/// <summary>One refusal, described once for both formats.</summary>
internal sealed record GatewayError(int Status, string Title, string Detail, string OpenAiType, string Code)
{
    public static GatewayError MissingKey { get; } = new(StatusCodes.Status401Unauthorized, "API key required",
        "Send an API key as 'Authorization: Bearer <key>' or 'api-key: <key>'.", "invalid_request_error", "invalid_api_key");

    public static GatewayError InvalidKey { get; } = new(StatusCodes.Status401Unauthorized, "Invalid API key",
        "The API key is not valid.", "invalid_request_error", "invalid_api_key");

    public static GatewayError RateLimited { get; } = new(StatusCodes.Status429TooManyRequests, "Too many requests",
        "This client sent more requests than its rate allows; retry after the time in Retry-After.", "rate_limit_error", "rate_limit_exceeded");

    public static GatewayError Overloaded { get; } = new(StatusCodes.Status503ServiceUnavailable, "Gateway at capacity",
        "The gateway holds as many streams as it may (Gateway:MaxConcurrentStreams); retry after the time in Retry-After.", "server_error", "server_overloaded");

    public static GatewayError InvalidLastEventId { get; } = new(StatusCodes.Status400BadRequest, "Invalid Last-Event-ID",
        "The Last-Event-ID is not a valid event id: send an id received from this stream, such as '1732500000000-0'.", "invalid_request_error", "invalid_header");

    public static GatewayError IncompleteBody { get; } = new(StatusCodes.Status400BadRequest, "Request body incomplete",
        "The request body was not received in full: it ended before the length it declared, was malformed, or arrived too slowly.",
        "invalid_request_error", "incomplete_body");

    /// <summary>A header value that is not ASCII; the name is the client's, so it is clipped.</summary>
    public static GatewayError InvalidHeader(string name) => new(StatusCodes.Status400BadRequest, "Invalid request header",
        $"The value of the header '{(name.Length > 64 ? name[..64] + "…" : name)}' holds characters outside ASCII; header values must be ASCII.",
        "invalid_request_error", "invalid_header");

    public static GatewayError TooLarge(long limit) => new(StatusCodes.Status413PayloadTooLarge, "Request body too large",
        $"The body must be at most {limit} bytes.", "invalid_request_error", "request_too_large");
}
