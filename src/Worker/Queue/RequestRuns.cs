using System.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Queue;

/// <summary>
/// The worker's generation slots (<see cref="WorkerOptions.MaxConcurrency"/>) and the runs on them: each run holds a
/// slot and its entry's claim until its entry is settled as the run asks.
/// </summary>
internal sealed class RequestRuns(
    IConnectionMultiplexer redis,
    QueueClaims claims,
    GenerationRunner runner,
    EntrySettler settler,
    IOptions<WorkerOptions> options,
    ILogger<RequestRuns> logger) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrency, options.Value.MaxConcurrency);
    private readonly List<Task> _running = [];

    /// <summary>Waits for a free slot, then takes as many more as are free, up to <paramref name="most"/> in all; 0 when cancelled.</summary>
    public async Task<int> TakeSlotsAsync(int most, CancellationToken cancellationToken)
    {
        try
        {
            await _slots.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }

        var taken = 1;
        while (taken < most && _slots.Wait(0, CancellationToken.None))
        {
            taken++;
        }

        return taken;
    }

    public void ReleaseSlots(int count)
    {
        if (count > 0)
        {
            _slots.Release(count);
        }
    }

    /// <summary>Runs <paramref name="request"/> on a slot the caller took; the run gives the slot back.</summary>
    public void Start(QueuedRequest request, CancellationToken generationToken)
    {
        claims.Hold(request);
        var task = RunAsync(request, generationToken);
        lock (_running)
        {
            _running.RemoveAll(static t => t.IsCompleted);
            _running.Add(task);
        }
    }

    /// <summary>Completes when every run started so far has settled its entry (or left it pending).</summary>
    public Task WhenAllSettled()
    {
        lock (_running)
        {
            return Task.WhenAll([.. _running]);
        }
    }

    /// <summary>Puts requests read but not started back at the end of their queue, on shutdown.</summary>
    public async Task HandBackAsync(QueuedRequest[] requests)
    {
        foreach (var request in requests)
        {
            await QueueEntries.HandBackAsync(redis.GetDatabase(), request);
        }
    }

    public void Dispose() => _slots.Dispose();

    private async Task RunAsync(QueuedRequest request, CancellationToken generationToken)
    {
        try
        {
            await Task.Yield();
            // Not a child of whatever the consumer loop ran under: the trace continues from the request's traceparent.
            Activity.Current = null;
            await SettleAsync(request, await runner.RunAsync(request, generationToken));
        }
        finally
        {
            claims.Release(request);
            _slots.Release();
        }
    }

    /// <summary>Settles the entry as its run asks; one that cannot be settled stays pending and is claimed later.</summary>
    private async Task SettleAsync(QueuedRequest request, RunOutcome outcome)
    {
        try
        {
            switch (outcome)
            {
                case RunOutcome.Done:
                    await settler.AcknowledgeAsync(request.Queue, request.EntryId);
                    break;
                case RunOutcome.HandBack:
                    await QueueEntries.HandBackAsync(redis.GetDatabase(), request);
                    break;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.SettleFailed(logger, ex, request.EntryId.ToString());
        }
    }
}
