namespace VixAspire.StreamApi.Streaming;

/// <summary>A client mistake or a refusal, described once and rendered by each front end in its own error format.</summary>
internal sealed record RequestFault(int Status, string Title, string Detail, string Code, IDictionary<string, string[]>? Errors = null)
{
    /// <summary>Most validation errors one answer lists; the rest are counted, so no input makes the answer large.</summary>
    public const int MaxErrors = 20;

    /// <summary>Longest text taken from the client's input (a model name, a JSON error's path) into a message.</summary>
    private const int MaxEchoChars = 200;

    /// <summary>Seconds a refused client should wait (the <c>Retry-After</c> of HTTP front ends).</summary>
    public const string RetryAfterSeconds = "1";

    /// <summary>Refusals for load (429, 5xx) are worth retrying; mistakes in the request are not.</summary>
    public bool Retryable => Status is StatusCodes.Status429TooManyRequests or >= 500;

    /// <summary><paramref name="text"/>, cut to a bounded length when it may echo the client's input.</summary>
    public static string Clip(string text) => text.Length <= MaxEchoChars ? text : string.Concat(text.AsSpan(0, MaxEchoChars), "…");

    public IResult ToProblem() => Errors is null
        ? TypedResults.Problem(detail: Detail, statusCode: Status, title: Title)
        : TypedResults.ValidationProblem(Errors, detail: Detail, title: Title);
}
