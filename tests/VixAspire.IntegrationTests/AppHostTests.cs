using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The AppHost as a user runs it: Aspire starts redis-server (no container runtime here), StreamApi,
/// Worker and the gateway, and a client streams through the gateway. One AppHost serves the whole class.
/// </summary>
public sealed class AppHostTests(AppHostTests.Fixture fixture) : IClassFixture<AppHostTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public DistributedApplication App { get; private set; } = null!;

        public TimeSpan StartupTime { get; private set; }

        public async ValueTask InitializeAsync()
        {
            var started = Stopwatch.StartNew();
            using var startup = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            // Port 0: beside a running AppHost (on 8080) or another test run, the gateway takes any free port.
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
                ["Gateway:Port=0", "Services:Worker:Providers:Synthetic:TokenDelay=00:00:00.010",
                 "Services:All:Inference:Models:house-model:Provider=synthetic"], startup.Token);
            builder.Services.ConfigureHttpClientDefaults(http => http.ConfigureHttpClient(c => c.Timeout = TimeSpan.FromSeconds(60)));
            App = await builder.BuildAsync(startup.Token);
            await App.StartAsync(startup.Token);
            foreach (var resource in new[] { "redis", "streamapi", "worker", "gateway" })
            {
                await App.ResourceNotifications.WaitForResourceHealthyAsync(resource, startup.Token);
            }

            StartupTime = started.Elapsed;
        }

        public async ValueTask DisposeAsync()
        {
            if (App is not null)
            {
                await App.DisposeAsync();
            }
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheAppHostStreamsTokensThroughTheGateway()
    {
        using var client = fixture.App.CreateHttpClient("gateway");
        TestContext.Current.TestOutputHelper?.WriteLine($"AppHost healthy after {fixture.StartupTime.TotalSeconds:0.0} s");

        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "hello aspire", model = "synthetic", max_tokens = 8 }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["start", .. Enumerable.Repeat("token", 8), "end"], events.Select(e => e.EventType));
        Assert.Equal("length", events.EndReason());
        Assert.Equal(8, events.Text().Split(' ').Length);
    }

    [Fact]
    public async Task AModelRoutedInTheAppHostsSharedSettingsIsKnownToTheApiAndServedByTheWorker()
    {
        using var client = fixture.App.CreateHttpClient("gateway");

        var models = await client.GetStringAsync("/v1/models", Ct);
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "alias", model = "house-model", max_tokens = 3 }), Ct);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Contains("\"house-model\"", models);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("house-model", events[0].Payload.GetProperty("model").GetString());
        Assert.Equal("length", events.EndReason());
    }

    [Fact]
    public async Task TheGatewayAndTheServicesReportHealthy()
    {
        using var client = fixture.App.CreateHttpClient("gateway");

        using var health = await client.GetAsync("/health", Ct);
        using var alive = await client.GetAsync("/alive", Ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        using var api = fixture.App.CreateHttpClient("streamapi");
        Assert.Equal("Healthy", await api.GetStringAsync("/health", Ct));
    }

    [Fact]
    public async Task BadInputGetsAProblemThroughTheAppHostGateway()
    {
        using var client = fixture.App.CreateHttpClient("gateway");
        using var content = new StringContent("{\"prompt\":", System.Text.Encoding.UTF8, "application/json");

        using var response = await client.PostAsync("/infer/stream", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
