using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Inference;

public static partial class InferenceApi
{
    /// <summary>Maps <c>/infer/stream</c>: start a stream, attach to one, cancel one.</summary>
    public static RouteGroupBuilder MapInferenceApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/infer").WithTags("Inference");
        group.MapPost("/stream", StartStreamAsync);
        group.MapGet("/stream/{id}", AttachAsync);
        group.MapDelete("/stream/{id}", CancelAsync);
        return group;
    }

    internal static async Task<IResult> StartStreamAsync(
        HttpRequest request,
        InferenceRequestReader reader,
        RequestQueue queue,
        TokenStreamTailer tailer,
        StreamApiTelemetry telemetry,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var read = await reader.ReadAsync(request, cancellationToken);
        if (read.Problem is { } problem)
        {
            return problem;
        }

        var id = await queue.EnqueueAsync(read.Request!, cancellationToken);
        Activity.Current?.SetTag("vix.request.id", id);
        return new SseStreamResult(id, afterId: null, started, tailer, telemetry, loggers.CreateLogger<SseStreamResult>());
    }

    internal static async Task<IResult> AttachAsync(
        string id,
        HttpRequest request,
        RequestQueue queue,
        TokenStreamTailer tailer,
        StreamApiTelemetry telemetry,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        string? lastEventId = request.Headers["Last-Event-ID"];
        if (!string.IsNullOrEmpty(lastEventId) && !StreamEntryId().IsMatch(lastEventId))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid Last-Event-ID",
                detail: "Last-Event-ID must be an event id received from this stream, such as '1732500000000-0'.");
        }

        if (!RequestId().IsMatch(id) || !await queue.ExistsAsync(id, cancellationToken))
        {
            return UnknownStream(id);
        }

        return new SseStreamResult(id, string.IsNullOrEmpty(lastEventId) ? null : lastEventId,
            Stopwatch.GetTimestamp(), tailer, telemetry, loggers.CreateLogger<SseStreamResult>());
    }

    internal static async Task<Results<Accepted, ProblemHttpResult>> CancelAsync(
        string id, RequestQueue queue, CancellationToken cancellationToken)
    {
        if (!RequestId().IsMatch(id) || !await queue.CancelAsync(id, cancellationToken))
        {
            return UnknownStream(id);
        }

        return TypedResults.Accepted($"/infer/stream/{id}");
    }

    private static ProblemHttpResult UnknownStream(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown stream",
            detail: $"No stream with id '{id}' exists; it may have expired after the resume window.");

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex RequestId();

    [GeneratedRegex(@"^\d{1,20}-\d{1,20}$")]
    private static partial Regex StreamEntryId();
}
