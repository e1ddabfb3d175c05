namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// A level-triggered wake-up: <see cref="Set"/> from the subscription, <see cref="Reset"/> before each
/// read, <see cref="WaitAsync"/> after a read that found nothing. A wake that lands between reset and
/// wait is never lost, because the wait then completes at once.
/// </summary>
internal sealed class WakeSignal
{
    private volatile TaskCompletionSource _source = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _restored;

    public void Set() => _source.TrySetResult();

    /// <summary>Wakes the tail after a Redis connection came back, and marks it so that it checks the stream is still there.</summary>
    public void SetRestored()
    {
        Volatile.Write(ref _restored, 1);
        Set();
    }

    /// <summary>True once after each <see cref="SetRestored"/>.</summary>
    public bool TakeRestored() => Interlocked.Exchange(ref _restored, 0) == 1;

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
