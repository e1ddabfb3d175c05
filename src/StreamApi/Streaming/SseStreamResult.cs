namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// The result of a stream endpoint: one request's token stream as SSE, from after <see cref="AfterId"/>, ending after
/// the <c>end</c> event or at once when the client goes away.
/// </summary>
/// <param name="Slot">The client's concurrent-stream slot this response holds: its generation's, or its attachment's.</param>
internal sealed record SseStreamResult(string Id, string? AfterId, long StartTimestamp, StreamSlot? Slot) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        await using (Slot)
        {
            var follower = httpContext.RequestServices.GetRequiredService<StreamFollower>();
            httpContext.Response.Headers.Location = $"/infer/stream/{Id}";
            await SseWriter.WriteAsync(httpContext, follower.FollowAsync(Id, AfterId, StartTimestamp, Slot, httpContext.RequestAborted),
                static (writer, in item) => SseWriter.Write(writer, item));
        }
    }
}
