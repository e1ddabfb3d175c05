namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// A level-triggered wake-up: <see cref="Set"/> from the subscription, <see cref="Reset"/> before each
/// read, <see cref="WaitAsync"/> after a read that found nothing. A wake that lands between reset and
/// wait is never lost, because the wait then completes at once.
/// </summary>
internal sealed class WakeSignal
{
    private volatile TaskCompletionSource _source = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set() => _source.TrySetResult();

    public void Reset()
    {
        if (_source.Task.IsCompleted)
        {
            _source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>True when woken, false when <paramref name="timeout"/> passed first.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var task = _source.Task;
        if (task.IsCompleted)
        {
            return true;
        }

        try
        {
            await task.WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
