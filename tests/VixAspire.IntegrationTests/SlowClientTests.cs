using System.Net;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// A client that stops reading must not slow the worker or the other clients of the same generation: Redis
/// holds the tokens, and each response reads from Redis at its own client's pace.
/// </summary>
public sealed class SlowClientTests(SlowClientTests.Fixture fixture) : IClassFixture<SlowClientTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Inference:Models:chunky:Provider"] = ChunkyChatClient.Name,
                ["Streaming:MaxStreamBytes"] = "67108864",
            }, workerServices: ChunkyChatClient.Register);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AClientThatStopsReadingSlowsNeitherTheWorkerNorAnotherClient()
    {
        // 2,000 chunks of 4,000 bytes: 8 MB, far more than socket and pipe buffers hold for the stalled client.
        using var client = fixture.Services.CreateClient();
        using var stalled = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "chunks:2000x4000", model = "chunky", max_tokens = 32_768 }), Ct);
        Assert.Equal(HttpStatusCode.OK, stalled.StatusCode);
        var id = stalled.Headers.Location!.OriginalString["/infer/stream/".Length..];

        using var reader = RunningServices.CreateClient(client.BaseAddress!);
        using var fast = await reader.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, stalled.Headers.Location), Ct);
        var fastEvents = await fast.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal("stop", fastEvents.EndReason());
        Assert.Equal(2000, fastEvents.Count(e => e.EventType == "token"));
        var stream = await fixture.Redis.Database.StreamRangeAsync(RedisKeys.Tokens(id), "-", "+", 1, StackExchange.Redis.Order.Descending);
        Assert.Equal(EventNames.End, TokenStreams.EventOf(stream[0]));

        // The stalled client now reads everything, complete and in order.
        var slowEvents = await stalled.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(fastEvents.Select(e => e.Id), slowEvents.Select(e => e.Id));
        Assert.Equal(fastEvents.Text(), slowEvents.Text());
        Assert.Equal(Enumerable.Range(0, 2000), slowEvents.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
    }
}
