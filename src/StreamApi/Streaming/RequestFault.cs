namespace VixAspire.StreamApi.Streaming;

/// <summary>A client mistake or a refusal, described once and rendered by each front end in its own error format.</summary>
internal sealed record RequestFault(int Status, string Title, string Detail, string Code, IDictionary<string, string[]>? Errors = null)
{
    /// <summary>Seconds a refused client should wait (the <c>Retry-After</c> of HTTP front ends).</summary>
    public const string RetryAfterSeconds = "1";

    /// <summary>Refusals for load (429, 5xx) are worth retrying; mistakes in the request are not.</summary>
    public bool Retryable => Status is StatusCodes.Status429TooManyRequests or >= 500;

    public IResult ToProblem() => Errors is null
        ? TypedResults.Problem(detail: Detail, statusCode: Status, title: Title)
        : TypedResults.ValidationProblem(Errors, detail: Detail, title: Title);
}
