using System.Net;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// A StreamApi replica SIGKILLed under 100 streams, every service a real process behind the real gateway:
/// clients resume through the gateway with <c>Last-Event-ID</c> and lose or repeat nothing, and streams whose
/// clients never come back are still cancelled, though the replica that counted them attached is gone.
/// </summary>
public sealed class ApiKillTests : IAsyncLifetime
{
    private const int Streams = 100;
    private const int Abandoned = 10;
    private const int TokensPerStream = 800;

    private readonly RedisServer _redis = new();
    private ServiceProcesses _services = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _services = await ServiceProcesses.StartAsync(_redis, new Dictionary<string, string?>
        {
            ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
            ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
            ["Streaming:DisconnectGrace"] = "00:00:03",
            ["Streaming:HeartbeatInterval"] = "00:00:01",
            ["Streaming:MaxConcurrentStreamsPerClient"] = "0",
        }, apis: 2, Ct);
        await _services.StartWorkerAsync(null, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task ClientsOfAKilledReplicaResumeWithoutGapOrDuplicateAndAbandonedStreamsAreCancelled()
    {
        using var client = _services.CreateClient();
        var clients = Enumerable.Range(0, Streams).Select(i => new ResumingClient(client, $"resume {i}", resume: i >= Abandoned)).ToList();
        var runs = clients.Select(c => c.RunAsync()).ToList();
        await Task.WhenAll(clients.Select(c => c.FirstToken)).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        await _services.Apis[0].KillAsync();
        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(120), Ct);

        var cut = clients.Where(c => c.Interruptions > 0).ToList();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{Streams} streams: {cut.Count} cut by the kill, {cut.Count(c => c.Resume)} resumed, {cut.Count(c => !c.Resume)} abandoned; " +
            $"{clients.Where(c => c.Resume).Sum(c => c.Events.Count(e => e.EventType == "token"))} tokens received by resuming clients");
        Assert.NotEmpty(cut);
        foreach (var resumed in clients.Where(c => c.Resume))
        {
            var events = resumed.Events;
            Assert.Equal("start", events[0].EventType);
            Assert.Equal(EndReasons.Length, events.EndReason());
            Assert.Single(events, e => e.EventType == "end");
            Assert.Equal(Enumerable.Range(0, TokensPerStream),
                events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
            Assert.Equal(events.Count, events.Select(e => e.Id).Distinct().Count());
        }

        // The abandoned clients that were on the killed replica never come back: their generations must stop
        // (reason cancelled) long before they could have finished on their own.
        var abandoned = clients.Where(c => !c.Resume && c.Interruptions > 0).ToList();
        foreach (var gone in abandoned)
        {
            var end = await WaitForEndAsync(gone.Id);
            Assert.Equal(EndReasons.Cancelled, end);
        }
    }

    [Fact]
    public async Task AReplicaStoppedGracefullyClosesItsStreamsAtOnceWithoutEndAndTheirClientsResumeElsewhere()
    {
        using var client = _services.CreateClient();
        var clients = Enumerable.Range(0, 20).Select(i => new ResumingClient(client, $"drain {i}", resume: true)).ToList();
        var runs = clients.Select(c => c.RunAsync()).ToList();
        await Task.WhenAll(clients.Select(c => c.FirstToken)).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        // Well inside the host's 30 s shutdown timeout, which is what holds open streams today.
        await _services.Apis[0].TerminateAsync(TimeSpan.FromSeconds(10));
        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(120), Ct);

        Assert.Contains(clients, c => c.Interruptions > 0);
        Assert.All(clients, c =>
        {
            Assert.Equal(EndReasons.Length, c.Events.EndReason());
            Assert.Single(c.Events, e => e.EventType == "end");
            Assert.DoesNotContain(c.Events, e => e.EventType == "error");
            Assert.Equal(Enumerable.Range(0, TokensPerStream),
                c.Events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
        });
    }

    [Fact]
    public async Task TheLeasesOfAKilledReplicaRunOutSoItsStreamsCountAsAbandonedOnceTheGraceHasPassed()
    {
        // Straight to the first replica, so that it is the one holding the client's lease.
        using var client = RunningServices.CreateClient(_services.Apis[0].Address);
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "orphan", max_tokens = TokensPerStream }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await response.ReadEventsAsync(Ct).FirstAsync(e => e.EventType == "token", Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(60), Ct);

        var db = _redis.Database;
        Assert.Equal(1, await AttachLeaseProbe.LiveLeasesAsync(db, id));
        Assert.False(await AttachLeaseProbe.IsAbandonedAsync(db, id, TimeSpan.FromSeconds(1)));

        // SIGKILL: no detach, no grace check; only the lease's expiry (2.5 heartbeats) tells.
        await _services.Apis[0].KillAsync();
        await Eventually.UntilAsync(() => AttachLeaseProbe.IsAbandonedAsync(db, id, TimeSpan.FromSeconds(1)), TimeSpan.FromSeconds(30),
            $"stream {id} abandoned after its replica died\n{_services.Logs}", Ct);

        Assert.Equal(0, await AttachLeaseProbe.LiveLeasesAsync(db, id));
        Assert.False(await db.KeyExistsAsync(RedisKeys.Left(id)));
    }

    private async Task<string> WaitForEndAsync(string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var last = await _redis.Database.StreamRangeAsync(RedisKeys.Tokens(id), "-", "+", 1, Order.Descending);
            if (last.Length > 0 && last[0][StreamFields.Event] == EventNames.End)
            {
                return TokenStreams.PayloadOf(last[0]).GetProperty("reason").GetString()!;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Stream {id} did not end.\n{_services.Logs}");
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>
    /// A client that follows one stream through the gateway and, when its connection breaks, attaches again
    /// with <c>Last-Event-ID</c> (retrying while the gateway still answers 502/503 for the dead replica).
    /// </summary>
    private sealed class ResumingClient(HttpClient client, string prompt, bool resume)
    {
        private readonly TaskCompletionSource _firstToken = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Resume => resume;

        public Task FirstToken => _firstToken.Task;

        public List<ServerEvent> Events { get; } = [];

        public string Id { get; private set; } = "";

        public int Interruptions { get; private set; }

        public async Task RunAsync()
        {
            try
            {
                var request = SseEvents.StreamRequest(new { prompt, max_tokens = TokensPerStream });
                while (!await FollowAsync(request))
                {
                    Interruptions++;
                    if (!resume)
                    {
                        return;
                    }

                    request = new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{Id}");
                    request.Headers.Add("Last-Event-ID", Events.Last(e => e.Id is not null).Id);
                }
            }
            finally
            {
                _firstToken.TrySetException(new InvalidOperationException($"'{prompt}' got no token."));
            }
        }

        /// <summary>True when the stream was read to its end; false when the connection broke first.</summary>
        private async Task<bool> FollowAsync(HttpRequestMessage request)
        {
            try
            {
                using var response = await client.SendStreamingAsync(request, Ct);
                if (response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable)
                {
                    await Task.Delay(100, Ct);
                    return false;
                }

                response.EnsureSuccessStatusCode();
                await foreach (var e in response.ReadEventsAsync(Ct))
                {
                    Events.Add(e);
                    if (e.EventType == "start")
                    {
                        Id = e.Payload.GetProperty("id").GetString()!;
                    }
                    else if (e.EventType == "token")
                    {
                        _firstToken.TrySetResult();
                    }
                }

                return Events.Count > 0 && Events[^1].EventType == "end";
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException)
            {
                return false;
            }
        }
    }
}
