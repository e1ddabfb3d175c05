using System.Diagnostics;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using static VixAspire.TestSupport.TokenStreams;

namespace VixAspire.Worker.Tests;

/// <summary>
/// A worker that shuts down (the host's stopping token, as SIGTERM gives it) leaves no stream without an end:
/// streams that have sent tokens end with an error then end, and requests that have not are handed back to
/// the queue for another worker.
/// </summary>
public sealed class WorkerShutdownTests : ServicesFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public override ValueTask InitializeAsync() => StartAsync(workers: 0, gateway: false, cancellationToken: Ct);

    private Dictionary<string, string?> Settings(string firstTokenDelay) => new()
    {
        ["ConnectionStrings:redis"] = Redis.ConnectionString,
        ["Providers:Synthetic:FirstTokenDelay"] = firstTokenDelay,
        ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
    };

    [Fact]
    public async Task StreamsThatSentTokensEndWithAnErrorThenEndWhenTheWorkerStops()
    {
        var worker = await Services.StartWorkerAsync(Settings("00:00:00"), Ct);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var id = await EnqueueAsync(Redis.Database, Request($"long {i}", 5000));
            await WaitForAsync(Redis.Connection, id, e => e.Any(x => EventOf(x) == EventNames.Token), TimeSpan.FromSeconds(30), Ct);
            ids.Add(id);
        }

        await Services.StopWorkerAsync(worker, Ct);

        foreach (var id in ids)
        {
            var entries = await WaitForEndAsync(Redis.Connection, id, Ct);
            Assert.Equal(EventNames.Error, EventOf(entries[^2]));
            Assert.Equal(ErrorCodes.WorkerShutdown, PayloadOf(entries[^2]).GetProperty("code").GetString());
            Assert.True(PayloadOf(entries[^2]).GetProperty("retryable").GetBoolean());
            Assert.Equal("error", PayloadOf(entries[^1]).GetProperty("reason").GetString());
            await WaitUntilDequeuedAsync(Redis.Connection, id, Ct);
        }
    }

    [Fact]
    public async Task ARequestWithoutTokensYetIsHandedToAnotherWorker()
    {
        // The first worker takes a minute to its first token; it is stopped long before that.
        // The listener hears the workers of every test class running meanwhile: it waits for this request only.
        var id = Guid.CreateVersion7().ToString("N");
        var picked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == Microsoft.Extensions.Hosting.TelemetrySources.Worker,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = activity =>
            {
                if (activity.GetTagItem("vix.request.id") as string == id)
                {
                    picked.TrySetResult();
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var slow = await Services.StartWorkerAsync(Settings("00:01:00"), Ct);
        await EnqueueAsync(Redis.Database, Request("hand me over", 5), id);
        await picked.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        await Services.StartWorkerAsync(Settings("00:00:00"), Ct);
        await Services.StopWorkerAsync(slow, Ct);
        var entries = await WaitForEndAsync(Redis.Connection, id, Ct);

        Assert.Equal(["start", "token", "token", "token", "token", "token", "end"], entries.Select(EventOf));
        Assert.Equal("length", PayloadOf(entries[^1]).GetProperty("reason").GetString());
        await WaitUntilDequeuedAsync(Redis.Connection, id, Ct);
        // The stopped worker had nothing pending after the hand-back, so it left the group.
        var consumers = await Redis.Database.StreamConsumerInfoAsync(RedisKeys.Requests, RedisKeys.WorkersGroup);
        Assert.Single(consumers);
    }
}
