namespace VixAspire.TestSupport;

/// <summary>A stream posted through the gateway and read to its end in the background, as a client would.</summary>
/// <param name="Id">The stream id, once the start event arrived.</param>
/// <param name="FirstToken">Completes at the first token event.</param>
/// <param name="Events">Every event, once the server closed the response.</param>
public sealed record StreamFollowing(Task<string> Id, Task FirstToken, Task<List<ServerEvent>> Events)
{
    /// <summary>Posts <paramref name="body"/> to <c>/infer/stream</c> and reads the response to the end.</summary>
    public static StreamFollowing Start(HttpClient client, object body, CancellationToken cancellationToken)
    {
        var id = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return new StreamFollowing(id.Task, firstToken.Task, ReadAsync());

        async Task<List<ServerEvent>> ReadAsync()
        {
            var events = new List<ServerEvent>();
            try
            {
                using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(body), cancellationToken);
                response.EnsureSuccessStatusCode();
                await foreach (var e in response.ReadEventsAsync(cancellationToken))
                {
                    events.Add(e);
                    if (e.EventType == "start")
                    {
                        id.TrySetResult(e.Payload.GetProperty("id").GetString()!);
                    }
                    else if (e.EventType == "token")
                    {
                        firstToken.TrySetResult();
                    }
                }

                return events;
            }
            finally
            {
                id.TrySetException(new InvalidOperationException($"The stream got no start: {events.Count} events."));
                firstToken.TrySetException(new InvalidOperationException($"The stream got no token: {events.Count} events."));
            }
        }
    }
}
