using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using VixAspire.StreamApi.Streaming;
using VixAspire.StreamApi.Streaming.Scripts;

namespace VixAspire.StreamApi.Inference;

public static partial class InferenceApi
{
    /// <summary>Maps <c>/infer/stream</c>: start a stream, attach to one, cancel one.</summary>
    public static RouteGroupBuilder MapInferenceApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/infer").WithTags("Inference");
        group.MapPost("/stream", StartStreamAsync).RefuseWhileRedisIsUnreachable(static fault => fault.ToProblem());
        group.MapGet("/stream/{id}", AttachAsync).RefuseWhileRedisIsUnreachable(static fault => fault.ToProblem());
        group.MapDelete("/stream/{id}", CancelAsync).RefuseWhileRedisIsUnreachable(static fault => fault.ToProblem());
        return group;
    }

    internal static async Task<IResult> StartStreamAsync(
        HttpContext context, InferenceRequestReader reader, StreamStarter starter, CancellationToken cancellationToken)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var read = await reader.ReadAsync(context.Request, cancellationToken);
        if (read.Problem is { } problem)
        {
            return problem;
        }

        var started = await starter.StartAsync(context, read.Request!);
        return started.Refusal?.ToProblem() ?? new SseStreamResult(started.Id, AfterId: null, startedAt, started.Slot);
    }

    internal static async Task<IResult> AttachAsync(
        string id,
        HttpContext context,
        RequestQueue queue,
        StreamStarter starter,
        CancellationToken cancellationToken)
    {
        string? lastEventId = context.Request.Headers["Last-Event-ID"];
        if (!string.IsNullOrEmpty(lastEventId) && !IsStreamEntryId(lastEventId))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid Last-Event-ID",
                detail: "Last-Event-ID must be an event id received from this stream, such as '1732500000000-0'.");
        }

        // With API keys, another key's stream is as unknown as a missing one.
        if (!RequestId().IsMatch(id) || !await queue.ExistsAsync(id, ClientIdentity.Of(context).Key, cancellationToken))
        {
            return UnknownStream(id);
        }

        var (slot, refusal) = await starter.AttachAsync(context, id);
        return refusal?.ToProblem() ?? new SseStreamResult(id, string.IsNullOrEmpty(lastEventId) ? null : lastEventId, Stopwatch.GetTimestamp(), slot);
    }

    internal static async Task<Results<Accepted, ProblemHttpResult>> CancelAsync(
        string id, HttpContext context, StreamCancellation cancellation, StreamApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var outcome = RequestId().IsMatch(id)
            ? await cancellation.CancelAsync(id, ClientIdentity.Of(context).Key, cancellationToken)
            : CancelScripts.Reply.NotFound;
        if (outcome == CancelScripts.Reply.NotFound)
        {
            return UnknownStream(id);
        }

        if (outcome == CancelScripts.Reply.Cancelled)
        {
            telemetry.Cancelled(CancelSources.Delete);
        }

        return TypedResults.Accepted($"/infer/stream/{id}");
    }

    private static ProblemHttpResult UnknownStream(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown stream",
            detail: $"No stream with id '{id}' exists; it may have expired after the resume window.");

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex RequestId();

    /// <summary>
    /// A Redis stream entry id (<c>ms-seq</c>, two unsigned 64-bit numbers) that could have been received: its time is not in the future (a minute of clock
    /// difference between Redis and this replica allowed). A later id would wait for entries that never come.
    /// </summary>
    private static bool IsStreamEntryId(string value) =>
        value.IndexOf('-', StringComparison.Ordinal) is var dash and > 0
        && ulong.TryParse(value.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
        && ms <= (ulong)DateTimeOffset.UtcNow.Add(MaxClockDifference).ToUnixTimeMilliseconds()
        && ulong.TryParse(value.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _);

    private static readonly TimeSpan MaxClockDifference = TimeSpan.FromMinutes(1);
}
