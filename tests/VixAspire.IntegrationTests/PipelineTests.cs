using System.Net;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The whole pipeline on real parts: client → real YARP gateway → StreamApi → redis-server → Worker, each on
/// its own Kestrel server, with the synthetic model at a real model's pace (20 ms a token).
/// </summary>
public sealed class PipelineTests(PipelineTests.Fixture fixture) : IClassFixture<PipelineTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00.050",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
            }, workers: 1, gateway: true);
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TokensStreamThroughTheGatewayAsStartTokensThenEnd()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "through the gateway", model = "synthetic", max_tokens = 12 }), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.CacheControl?.NoCache);
        Assert.Equal("no", Assert.Single(response.Headers.GetValues("X-Accel-Buffering")));
        Assert.Null(response.Content.Headers.ContentEncoding.FirstOrDefault());
        Assert.Matches("^/infer/stream/[0-9a-f]{32}$", response.Headers.Location!.OriginalString);

        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(["start", .. Enumerable.Repeat("token", 12), "end"], events.Select(e => e.EventType));
        Assert.Equal(["inference.start", .. Enumerable.Repeat("inference.token", 12), "inference.end"], events.Select(e => e.EnvelopeType));
        Assert.Equal(Enumerable.Range(0, 12), events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()));
        Assert.Equal("length", events.EndReason());
        Assert.Equal(12, events[^1].Payload.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal("synthetic", events[0].Payload.GetProperty("model").GetString());
        AssertIdsIncrease(events);
    }

    [Fact]
    public async Task TheFirstTokenReachesTheClientBeforeTheWorkerProducesTheLast()
    {
        // 2,000 tokens at 20 ms take 40 s to generate. A gateway that buffered would hold the first token
        // until the last; here the client reads it, then cancels, and the stream must end long before.
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "unbuffered", max_tokens = 2000 }), Ct);
        var location = response.Headers.Location!.OriginalString;
        var events = new List<ServerEvent>();
        await using var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        while (await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            events.Add(reader.Current);
            if (reader.Current.EventType == "token")
            {
                break;
            }
        }

        using var cancel = await client.DeleteAsync(location, Ct);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        while (await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            events.Add(reader.Current);
        }

        Assert.Equal("cancelled", events.EndReason());
        Assert.InRange(events.Count(e => e.EventType == "token"), 1, 1999);
        Assert.InRange(events[^1].Payload.GetProperty("usage").GetProperty("output_tokens").GetInt32(), 1, 1999);
    }

    [Fact]
    public async Task AFailingModelGivesAnErrorEventThenEndThroughTheGateway()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "fail please", model = "synthetic-fail", max_tokens = 50 }), Ct);

        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(["start", "token", "token", "token", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal("inference.error", events[^2].EnvelopeType);
        Assert.Equal("provider_error", events[^2].Payload.GetProperty("code").GetString());
        Assert.Equal("error", events.EndReason());
    }

    [Fact]
    public async Task AttachingAfterTheEndReplaysTheSameEvents()
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "replay me", max_tokens = 6 }), Ct);
        var live = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        using var again = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, response.Headers.Location), Ct);
        var replay = await again.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(live.Select(e => (e.Id, e.EventType, e.Data)), replay.Select(e => (e.Id, e.EventType, e.Data)));
    }

    [Fact]
    public async Task ResumingWithLastEventIdGivesExactlyTheRestOfTheStream()
    {
        using var client = fixture.Services.CreateClient();
        using var clean = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "resume me", max_tokens = 30 }), Ct);
        var expected = (await clean.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct)).Text();

        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "resume me", max_tokens = 30 }), Ct);
        var location = response.Headers.Location!;
        var firstHalf = new List<ServerEvent>();
        await using (var reader = response.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct))
        {
            while (firstHalf.Count(e => e.EventType == "token") < 15 && await reader.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
            {
                firstHalf.Add(reader.Current);
            }
        }

        response.Dispose();
        using var resume = new HttpRequestMessage(HttpMethod.Get, location);
        resume.Headers.Add("Last-Event-ID", firstHalf[^1].Id);
        using var rest = await client.SendStreamingAsync(resume, Ct);
        var secondHalf = await rest.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(expected, firstHalf.Text() + secondHalf.Text());
        var tokens = firstHalf.Concat(secondHalf).Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32());
        Assert.Equal(Enumerable.Range(0, 30), tokens);
        Assert.Equal("length", secondHalf.EndReason());
    }

    [Fact]
    public async Task ResumingAfterTheEndEventClosesAtOnceWithNothingMore()
    {
        // What a browser's EventSource does when the server closes the stream: reconnect with the last id.
        using var client = fixture.Services.CreateClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "done", max_tokens = 2 }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        using var resume = new HttpRequestMessage(HttpMethod.Get, response.Headers.Location);
        resume.Headers.Add("Last-Event-ID", events[^1].Id);

        using var again = await client.SendStreamingAsync(resume, Ct);
        var after = await again.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Empty(after);
    }

    [Fact]
    public async Task SeveralClientsFollowingOneGenerationEachGetEveryEventInOrder()
    {
        using var client = fixture.Services.CreateClient();
        using var owner = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "fan out", max_tokens = 25 }), Ct);
        var followers = Enumerable.Range(0, 3).Select(async _ =>
        {
            using var follower = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, owner.Headers.Location), Ct);
            return await follower.ReadAllEventsAsync(Ct);
        }).ToList();

        var ownerEvents = await owner.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        var all = await Task.WhenAll(followers).WaitAsync(Bound, Ct);

        Assert.Equal(27, ownerEvents.Count);
        Assert.All(all, events => Assert.Equal(ownerEvents.Select(e => (e.Id, e.Data)), events.Select(e => (e.Id, e.Data))));
    }

    [Fact]
    public async Task BadInputThroughTheGatewayIsAProblemNotAStream()
    {
        using var client = fixture.Services.CreateClient();
        using var content = new StringContent("{\"prompt\":\"x\",\"model\":\"no-such-model\"}", System.Text.Encoding.UTF8, "application/json");

        using var response = await client.PostAsync("/infer/stream", content, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    private static void AssertIdsIncrease(List<ServerEvent> events)
    {
        var ids = events.Select(e => e.Id!.Split('-').Select(ulong.Parse).ToArray()).ToList();
        for (var i = 1; i < ids.Count; i++)
        {
            Assert.True(ids[i][0] > ids[i - 1][0] || (ids[i][0] == ids[i - 1][0] && ids[i][1] > ids[i - 1][1]), "event ids must increase");
        }
    }
}
