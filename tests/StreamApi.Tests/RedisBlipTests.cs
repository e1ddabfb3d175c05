using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The API's read side while Redis drops its connections or restarts, with the test playing the worker on a
/// connection of its own and a 30 s heartbeat, so that nothing but the API's own recovery can explain a client
/// getting its tokens (or its <c>stream_lost</c>) within seconds. A Redis of its own, since it breaks it.
/// </summary>
public sealed class RedisBlipTests(RedisBlipTests.Fixture fixture) : IClassFixture<RedisBlipTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync() =>
            await StartAsync(new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:30" }, workers: 0, gateway: false);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AFollowerReadsOnThroughDroppedConnectionsAndGetsTheTokensWhoseWakeUpsWereLost()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "blip" }), Ct);
        var id = response.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        var received = new List<ServerEvent>();
        received.Add(await NextAsync(events));

        var index = 0;
        for (var drop = 0; drop < 5; drop++)
        {
            await AppendAsync(id, EventNames.Token, Envelopes.Token($"t{index}", index++));
            received.Add(await NextAsync(events));

            // Every connection of the API; appended at once, so the wake-up goes out while its subscription is down.
            await fixture.Redis.Database.ExecuteAsync("CLIENT", "KILL", "TYPE", "normal");
            await fixture.Redis.Database.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
            await AppendAsync(id, EventNames.Token, Envelopes.Token($"t{index}", index++));
            received.Add(await NextAsync(events));
        }

        await AppendAsync(id, EventNames.End, Envelopes.End(EndReasons.Stop, index));
        received.Add(await NextAsync(events));

        Assert.DoesNotContain(received, e => e.EventType == "error");
        Assert.Equal(Enumerable.Range(0, index), received.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
        Assert.Equal("end", received[^1].EventType);
        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task AStreamLostWithARedisRestartEndsWithStreamLostLongBeforeTheNextHeartbeat()
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "restart" }), Ct);
        await using var events = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.Equal("start", (await NextAsync(events)).EventType);

        await fixture.Redis.KillAsync();
        await fixture.Redis.StartAgainAsync();
        var error = await NextAsync(events);
        var end = await NextAsync(events);

        Assert.Equal("error", error.EventType);
        Assert.Equal("stream_lost", error.Payload.GetProperty("code").GetString());
        Assert.True(error.Payload.GetProperty("retryable").GetBoolean());
        Assert.Equal("end", end.EventType);
        Assert.Equal(EndReasons.Error, end.Payload.GetProperty("reason").GetString());

        // The API is connected again: a new stream starts (503 until then says to retry).
        await Eventually.UntilAsync(async () =>
        {
            using var next = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "after" }), Ct);
            return next.StatusCode == System.Net.HttpStatusCode.OK;
        }, Bound, "a new stream after the restart", Ct);
    }

    /// <summary>The next event, within far less than the heartbeat interval.</summary>
    private static async Task<ServerEvent> NextAsync(IAsyncEnumerator<ServerEvent> events)
    {
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));
        return events.Current;
    }

    /// <summary>Plays the worker: appends one entry and publishes the wake-up (the test's connection is spared by CLIENT KILL).</summary>
    private async Task AppendAsync(string id, string name, byte[] envelope)
    {
        await TokenStreams.AppendAsync(fixture.Redis.Database, id, name, envelope);
    }
}
