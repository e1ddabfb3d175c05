using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.Gateway;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// The real gateway in front of a real StreamApi whose Kestrel closes idle connections after 2 s, with a
/// <see cref="LateCloseRelay"/> between them so that the API's close reaches the gateway 2 s late. A
/// gateway that kept pooled connections longer than the API's keep-alive would reuse a closed one and
/// answer 502; ours drops them after 1 s (cluster metadata <c>PooledConnectionIdleTimeout</c>), over HTTP/1.1
/// and over HTTP/2 alike (Kestrel's keep-alive timeout closes an HTTP/2 connection without streams too).
/// </summary>
public sealed class GatewayTests(GatewayTests.Fixture fixture) : IClassFixture<GatewayTests.Fixture>
{
    public static readonly TimeSpan ApiKeepAlive = TimeSpan.FromSeconds(2);

    public sealed class Fixture : ServicesFixture
    {
        public LateCloseRelay Relay { get; private set; } = null!;

        public WebApplication Gateway { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.001",
            }, workers: 1, gateway: false,
                apiServices: services => services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.KeepAliveTimeout = ApiKeepAlive));
            Relay = new LateCloseRelay(Services.ApiAddress, closeDelay: ApiKeepAlive);
            Gateway = await Services.AddGatewayAsync(Upstream(Relay.Address, http2: false, new Dictionary<string, string?>
            {
                ["ReverseProxy:Clusters:streamapi:Metadata:PooledConnectionIdleTimeout"] = "00:00:01",
            }));
            Http2Relay = new LateCloseRelay(Services.ApiHttp2Address, closeDelay: ApiKeepAlive);
            Http2Gateway = await Services.AddGatewayAsync(Upstream(Http2Relay.Address, http2: true, new Dictionary<string, string?>
            {
                [$"ReverseProxy:Clusters:{UpstreamProtocol.Http2Cluster}:Metadata:PooledConnectionIdleTimeout"] = "00:00:01",
            }));
        }

        public LateCloseRelay Http2Relay { get; private set; } = null!;

        public WebApplication Http2Gateway { get; private set; } = null!;

        public (WebApplication Gateway, LateCloseRelay Relay) Over(bool http2) => http2 ? (Http2Gateway, Http2Relay) : (Gateway, Relay);

        public override async ValueTask DisposeAsync()
        {
            // The gateways first (they stop with the services), then the relays they sent through.
            await base.DisposeAsync();
            foreach (var relay in new[] { Relay, Http2Relay })
            {
                if (relay is not null)
                {
                    await relay.DisposeAsync();
                }
            }
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PostsSentJustAsTheApiClosesItsIdleConnectionsAllStreamInFull(bool http2)
    {
        var (gateway, relay) = fixture.Over(http2);
        using var client = RunningServices.CreateClient(new Uri(gateway.Urls.First()));

        for (var round = 0; round < 4; round++)
        {
            await AssertStreamsInFullAsync(client, $"round {round}, first");
            // No gap: the pooled connection is reused well inside the API's keep-alive.
            await AssertStreamsInFullAsync(client, $"round {round}, second");
            // The idle gap under test: it lasts until the connection to the API is gone, closed by the API's
            // keep-alive timeout (whose close the relay reports late) or by the gateway's shorter idle timeout.
            await relay.AllUpstreamConnectionsClosed.WaitAsync(ApiKeepAlive * 5, Ct);
        }

        Assert.InRange(relay.Connections, 4, 8);
    }

    [Fact]
    public async Task APostTheApiReceivedIsNotSentAgainWhenTheApiDropsTheConnection()
    {
        await using var upstream = new DroppingUpstream();
        await using var gateway = await RunningServices.StartGatewayAsync(Upstream(upstream.Address, http2: false, []), Ct);
        using var client = RunningServices.CreateClient(new Uri(gateway.Urls.First()));

        using var response = await client.SendAsync(SseEvents.StreamRequest(new { prompt = "once", max_tokens = 2 }), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(1, upstream.Requests);
    }

    private static async Task AssertStreamsInFullAsync(HttpClient client, string what)
    {
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = what, model = "synthetic", max_tokens = 5 }), Ct).WaitAsync(Bound, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{what}: {(int)response.StatusCode} {response.StatusCode}");
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(["start", .. Enumerable.Repeat("token", 5), "end"], events.Select(e => e.EventType));
        Assert.Equal("length", events.EndReason());
    }

    /// <summary>The gateway's settings for sending its routes to <paramref name="destination"/> over HTTP/2 (its <c>h2</c> endpoint) or HTTP/1.1.</summary>
    private static Dictionary<string, string?> Upstream(Uri destination, bool http2, Dictionary<string, string?> settings)
    {
        settings["Gateway:UpstreamHttp2"] = http2.ToString();
        settings[$"ReverseProxy:Clusters:{(http2 ? UpstreamProtocol.Http2Cluster : UpstreamProtocol.Http1Cluster)}:Destinations:streamapi:Address"] = destination.ToString();
        return settings;
    }

    /// <summary>An upstream that reads a request's headers, counts it, and closes the connection without answering.</summary>
    private sealed class DroppingUpstream : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _serving;
        private int _requests;

        public DroppingUpstream()
        {
            _listener.Start();
            Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
            _serving = ServeAsync(_stop.Token);
        }

        public Uri Address { get; }

        public int Requests => Volatile.Read(ref _requests);

        private async Task ServeAsync(CancellationToken cancellationToken)
        {
            try
            {
                while (true)
                {
                    using var connection = await _listener.AcceptTcpClientAsync(cancellationToken);
                    var stream = connection.GetStream();
                    var received = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var read = await stream.ReadAsync(buffer, cancellationToken);
                        if (read == 0)
                        {
                            break;
                        }

                        received.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    }

                    if (received.ToString().StartsWith("POST ", StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref _requests);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _serving;
            _stop.Dispose();
        }
    }
}
