using VixAspire.Contracts;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>The requests running on one socket, each in its own task, found by request id or stream id for cancels.</summary>
internal sealed class SocketRequests(SocketRequestRunner runner)
{
    private readonly List<SocketRequest> _running = [];
    private readonly List<Task> _tasks = [];

    /// <summary>Runs a valid request until its end or <paramref name="cancellationToken"/> (the socket's lifetime). Called by the receive loop only.</summary>
    public void Start(string? requestId, InferenceRequest inference, long receivedAt, CancellationToken cancellationToken)
    {
        var request = new SocketRequest(requestId);
        lock (_running)
        {
            _running.Add(request);
        }

        _tasks.RemoveAll(t => t.IsCompleted);
        _tasks.Add(RunAsync(request, inference, receivedAt, cancellationToken));
    }

    /// <summary>Cancels the running requests with <paramref name="streamId"/>, else with <paramref name="requestId"/>, else all of them.</summary>
    public async Task CancelAsync(string? requestId, string? streamId, CancellationToken cancellationToken)
    {
        var cancels = new List<(SocketRequest Request, string StreamId)>();
        lock (_running)
        {
            foreach (var request in _running)
            {
                if (request.Matches(requestId, streamId) && request.RequestCancel() is { } id)
                {
                    cancels.Add((request, id));
                }
            }
        }

        await Task.WhenAll(cancels.Select(c => runner.CancelAsync(c.Request.RequestId, c.StreamId, cancellationToken)));
    }

    /// <summary>Waits for every request's task, once the receive loop has stopped.</summary>
    public Task WhenAllAsync() => Task.WhenAll(_tasks);

    private async Task RunAsync(SocketRequest request, InferenceRequest inference, long receivedAt, CancellationToken cancellationToken)
    {
        try
        {
            await runner.RunAsync(request, inference, receivedAt, cancellationToken);
        }
        finally
        {
            lock (_running)
            {
                _running.Remove(request);
            }
        }
    }
}

/// <summary>A request of one socket: its stream id once started, and whether a cancel came first.</summary>
internal sealed class SocketRequest(string? requestId)
{
    private readonly Lock _lock = new();
    private string? _streamId;
    private bool _cancelRequested;

    public string? RequestId => requestId;

    public bool Matches(string? requestId, string? streamId)
    {
        lock (_lock)
        {
            return streamId is not null ? _streamId == streamId : requestId is null || RequestId == requestId;
        }
    }

    /// <summary>Marks the request cancelled; returns its stream id when it has one (else its task cancels it on start).</summary>
    public string? RequestCancel()
    {
        lock (_lock)
        {
            _cancelRequested = true;
            return _streamId;
        }
    }

    /// <summary>Records the request's stream; true when a cancel came before it, which the caller then sends for the stream.</summary>
    public bool CancelCameFirst(string streamId)
    {
        lock (_lock)
        {
            _streamId = streamId;
            return _cancelRequested;
        }
    }
}
