using System.Net;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>With no worker running, the queue fills; past its cap the API refuses new work instead of trimming queued work.</summary>
public sealed class QueueLimitTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private RunningServices _services = null!;

    public async ValueTask InitializeAsync()
    {
        await _redis.InitializeAsync();
        _services = await RunningServices.StartAsync(_redis, new Dictionary<string, string?> { ["Streaming:MaxQueueLength"] = "16" },
            workers: 0, gateway: false, cancellationToken: TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task AFullQueueAnswers503WithRetryAfterAndKeepsEveryQueuedRequest()
    {
        var ct = TestContext.Current.CancellationToken;
        using var client = _services.CreateApiClient();
        var accepted = new List<HttpResponseMessage>();
        for (var i = 0; i < 16; i++)
        {
            var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = $"waiting {i}" }), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            accepted.Add(response);
        }

        using var refused = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "one too many" }), ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(16, await _redis.Database.StreamLengthAsync(RedisKeys.Requests));
        foreach (var response in accepted)
        {
            response.Dispose();
        }
    }
}
