using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// A body of almost 1 MB made of invalid messages, <c>{"messages":[{},{},…]}</c>, gets a small error from every front
/// end, through the gateway: a few listed mistakes and a count of the rest, never one error per item.
/// </summary>
public sealed class BoundedErrorTests(BoundedErrorTests.Fixture fixture) : IClassFixture<BoundedErrorTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync() => await StartAsync(workers: 0);
    }

    private const int MaxErrorBytes = 64 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary><c>[{},{},…]</c> of about 0.9 MB.</summary>
    private static readonly string EmptyMessages = "[" + string.Join(",", Enumerable.Repeat("{}", 300_000)) + "]";

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Theory]
    [InlineData("/infer/stream")]
    [InlineData("/v1/chat/completions")]
    public async Task AHugeListOfInvalidMessagesGetsA400UnderSixtyFourKiB(string path)
    {
        using var client = fixture.Services.CreateClient();
        using var response = await client.PostAsync(path, Json($$"""{"messages":{{EmptyMessages}}}"""), Ct);
        var body = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.InRange(body.Length, 1, MaxErrorBytes);
        Assert.Contains("299980 more invalid messages", Encoding.UTF8.GetString(body));
    }

    [Fact]
    public async Task AHugeListOfInvalidMessagesOverAWebSocketGetsASmallErrorThenEnd()
    {
        var address = new UriBuilder(fixture.Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri;
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(address, Ct).WaitAsync(Bound, Ct);
        var message = Encoding.UTF8.GetBytes($$$"""{"type":"inference.request","request_id":"big","payload":{"messages":{{{EmptyMessages}}}}}""");
        await socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);

        var error = await ReceiveAsync(socket);
        var end = await ReceiveAsync(socket);

        Assert.InRange(error.Length, 1, MaxErrorBytes);
        using var parsed = JsonDocument.Parse(error);
        Assert.Equal("inference.error", parsed.RootElement.GetProperty("type").GetString());
        Assert.Equal("invalid_request", parsed.RootElement.GetProperty("payload").GetProperty("code").GetString());
        Assert.Contains("299980 more invalid messages", parsed.RootElement.GetProperty("payload").GetProperty("message").GetString());
        using var ended = JsonDocument.Parse(end);
        Assert.Equal("inference.end", ended.RootElement.GetProperty("type").GetString());
    }

    /// <summary>Reads one whole message, however large, so an oversized one is measured rather than cut.</summary>
    private static async Task<byte[]> ReceiveAsync(ClientWebSocket socket)
    {
        var message = new MemoryStream();
        var buffer = new byte[64 * 1024];
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(), Ct).AsTask().WaitAsync(Bound, Ct);
            Assert.Equal(WebSocketMessageType.Text, result.MessageType);
            message.Write(buffer, 0, result.Count);
        }
        while (!result.EndOfMessage);

        return message.ToArray();
    }
}
