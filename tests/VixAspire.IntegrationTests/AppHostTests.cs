using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The AppHost as a user runs it: Aspire starts redis-server (no container runtime here), two StreamApi
/// replicas, two workers and the gateway, and a client streams through the gateway. One AppHost serves the
/// whole class.
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
                 "Services:All:Inference:Models:house-model:Provider=synthetic",
                 // Each StreamApi replica logs the requests it serves, so a test can tell which one served.
                 "Services:StreamApi:Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=Information"], startup.Token);
            builder.Services.ConfigureHttpClientDefaults(http => http.ConfigureHttpClient(c => c.Timeout = TimeSpan.FromSeconds(60)));
            App = await builder.BuildAsync(startup.Token);
            await App.StartAsync(startup.Token);
            foreach (var resource in new[] { "redis", "streamapi", "streamapi-1", "worker", "gateway" })
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

    private IResourceWithEndpoints Resource(string name) =>
        fixture.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<IResourceWithEndpoints>().Single(r => r.Name == name);

    private IResourceWithEndpoints[] StreamApiReplicas() =>
        [.. fixture.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<ProjectResource>()
            .Where(r => r.Name == "streamapi" || r.Name.StartsWith("streamapi-", StringComparison.Ordinal))];

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
        foreach (var replica in StreamApiReplicas())
        {
            using var api = fixture.App.CreateHttpClient(replica.Name);
            Assert.Equal("Healthy", await api.GetStringAsync("/health", Ct));
        }
    }

    [Fact]
    public void TheGatewayProcessItselfListensOnThePublicPortWithNoProxyInFront()
    {
        var gateway = Resource("gateway");
        var endpoint = Assert.Single(gateway.Annotations.OfType<EndpointAnnotation>(), e => e.Name == "http");
        var port = gateway.GetEndpoint("http").Port;

        Assert.False(endpoint.IsProxied);
        Assert.True(endpoint.IsExternal);
        Assert.Equal(["VixAspire.Gateway"], TcpSockets.Read().ListenersOn(port));
    }

    [Fact]
    public async Task TwoStreamsAtOnceGoFromTheGatewayStraightToEachOfTheTwoStreamApiReplicas()
    {
        var replicas = StreamApiReplicas();
        using var client = fixture.App.CreateHttpClient("gateway");
        var probe = Guid.NewGuid().ToString("N");

        // Long enough (300 tokens at 10 ms) that the first stream is still open when the second starts, so
        // the gateway's PowerOfTwoChoices sends the second one to the replica that has none.
        using var first = await client.SendStreamingAsync(ProbeRequest($"{probe}-a"), Ct);
        using var second = await client.SendStreamingAsync(ProbeRequest($"{probe}-b"), Ct);
        var sockets = TcpSockets.Read();

        Assert.Equal(2, replicas.Length);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var served = new List<string>();
        foreach (var replica in replicas)
        {
            // Clients and tests use the HTTP/1.1 endpoint; the gateway forwards over the HTTP/2 one (h2).
            var port = replica.GetEndpoint("http").Port;
            var upstreamPort = replica.GetEndpoint("h2").Port;
            Assert.False(Assert.Single(replica.Annotations.OfType<EndpointAnnotation>(), e => e.Name == "http").IsProxied);
            Assert.False(Assert.Single(replica.Annotations.OfType<EndpointAnnotation>(), e => e.Name == "h2").IsProxied);
            Assert.Equal(["VixAspire.StreamApi"], sockets.ListenersOn(port));
            Assert.Equal(["VixAspire.StreamApi"], sockets.ListenersOn(upstreamPort));
            Assert.Contains(sockets, s => s.Established && s.RemotePort == upstreamPort && s.Program == "VixAspire.Gateway");
            served.Add(await FirstProbeServedByAsync(replica, probe).WaitAsync(TimeSpan.FromSeconds(30), Ct));
        }

        Assert.Equal([$"{probe}-a", $"{probe}-b"], served.Order());
    }

    private static HttpRequestMessage ProbeRequest(string probe)
    {
        var request = SseEvents.StreamRequest(new { prompt = "which replica", model = "synthetic", max_tokens = 300 });
        request.RequestUri = new Uri($"/infer/stream?probe={probe}", UriKind.Relative);
        return request;
    }

    /// <summary>The probe in the first request line of <paramref name="replica"/>'s log that carries one.</summary>
    private async Task<string> FirstProbeServedByAsync(IResource replica, string probe)
    {
        var logs = fixture.App.Services.GetRequiredService<ResourceLoggerService>();
        await foreach (var batch in logs.WatchAsync(replica).WithCancellation(Ct))
        {
            foreach (var line in batch)
            {
                var at = line.Content.IndexOf($"probe={probe}-", StringComparison.Ordinal);
                if (at >= 0)
                {
                    return line.Content.Substring(at + "probe=".Length, probe.Length + 2);
                }
            }
        }

        throw new InvalidOperationException($"{replica.Name}'s log ended before it served a probe.");
    }

    [Fact]
    public async Task RedisRefusesAClientWithoutThePasswordWhichIsInNoResourcesArgumentsOrLog()
    {
        var connectionString = await fixture.App.GetConnectionStringAsync("redis", Ct);
        var password = connectionString?.Split(",password=") is [_, var value] ? value : null;
        var port = Resource("redis").GetEndpoint("tcp").Port;

        Assert.False(string.IsNullOrEmpty(password), "the services' connection string carries no password");
        Assert.StartsWith("-NOAUTH", await UnauthenticatedPingAsync(port));
        // The dashboard shows each resource's arguments: redis-server's carry no password.
        Assert.True(fixture.App.ResourceNotifications.TryGetCurrentState("redis", out var state));
        var args = state.Snapshot.Properties.Where(p => p.Name.Contains("args", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.NotEmpty(args);
        Assert.DoesNotContain(args, p => System.Text.Json.JsonSerializer.Serialize(p.Value).Contains(password, StringComparison.Ordinal));
        var logs = fixture.App.Services.GetRequiredService<ResourceLoggerService>();
        var lines = 0;
        foreach (var name in new[] { "redis", "streamapi", "streamapi-1", "worker", "gateway" })
        {
            await foreach (var batch in logs.GetAllAsync(Resource(name)).WithCancellation(Ct))
            {
                lines += batch.Count;
                Assert.DoesNotContain(batch, line => line.Content.Contains(password, StringComparison.Ordinal));
            }
        }

        Assert.True(lines > 0, "no log lines to check");
    }

    private static async Task<string> UnauthenticatedPingAsync(int port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, Ct);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray(), Ct);
        using var reader = new StreamReader(stream);
        return await reader.ReadLineAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct) ?? "";
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
