using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// Malformed requests sent byte by byte to the real gateway in front of a real StreamApi and Redis: each gets a
/// bounded 4xx in its route's format (or, when the client cannot be answered, a prompt close), never a 502 or a hang.
/// The gateway holds one proxied request at a time, so that a hostile request left hanging anywhere behind it
/// would show as a 503 for the next one. The API pings sockets every 5 minutes only, so that no unanswered ping
/// can be what ends a socket here.
/// </summary>
public sealed class GatewayHostileInputTests(GatewayHostileInputTests.Fixture fixture) : IClassFixture<GatewayHostileInputTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync() =>
            await StartAsync(new Dictionary<string, string?>
            {
                ["Gateway:MaxConcurrentStreams"] = "1",
                ["Streaming:HeartbeatInterval"] = "00:05:00",
                ["Streaming:MaxRequestBodyBytes"] = MaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }, workers: 0);
    }

    private const int MaxMessageBytes = 64 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private Uri Gateway => fixture.Services.GatewayAddress!;

    [Theory]
    [InlineData("C3A9")] // "é" in UTF-8
    [InlineData("E9")] // "é" in Latin-1: not even valid UTF-8
    public async Task ANonAsciiLastEventIdGetsA400ProblemNotA502(string hex)
    {
        var response = await SendAsync([.. Ascii("GET /infer/stream/some-stream HTTP/1.1\r\n" + HostAndClose + "Last-Event-ID: 1732500000000-"),
            .. Convert.FromHexString(hex), .. Ascii("\r\n\r\n")]);

        var problem = response.AssertProblem(HttpStatusCode.BadRequest);
        Assert.Equal("Invalid Last-Event-ID", problem.GetProperty("title").GetString());
        Assert.Contains("not a valid event id", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // An ASCII id goes through to the API, which knows no such stream.
        var ascii = await SendAsync(Ascii("GET /infer/stream/some-stream HTTP/1.1\r\n" + HostAndClose + "Last-Event-ID: 1732500000000-0\r\n\r\n"));
        Assert.Equal(HttpStatusCode.NotFound, ascii.Status);
    }

    [Fact]
    public async Task ANonAsciiValueInAnyHeaderGetsA400InTheRoutesFormat()
    {
        byte[] Request(string path) => [.. Ascii($"GET {path} HTTP/1.1\r\n{HostAndClose}X-Note: caf"), 0xC3, 0xA9, .. Ascii("\r\n\r\n")];

        var infer = await SendAsync(Request("/infer/stream/some-stream"));
        var problem = infer.AssertProblem(HttpStatusCode.BadRequest);
        Assert.Equal("Invalid request header", problem.GetProperty("title").GetString());
        Assert.Contains("'X-Note'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var openAi = await SendAsync(Request("/v1/models"));
        openAi.AssertOpenAiError(HttpStatusCode.BadRequest, "invalid_header");
    }

    [Theory]
    [InlineData("/infer/stream")]
    [InlineData("/v1/chat/completions")]
    public async Task ABodyShorterThanItsContentLengthGetsA400WhileTheClientWaitsAndNothingIsLeftHanging(string path)
    {
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        // 100 bytes declared, 15 sent; the connection stays open and sends nothing more.
        await stream.WriteAsync(Ascii($"POST {path} HTTP/1.1\r\n{HostAndClose}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            + "{\"prompt\":\"hi\""), Ct);

        var response = Parse(await stream.ReadUntilClosedAsync(Ct).WaitAsync(Bound, Ct));

        if (path.StartsWith("/v1", StringComparison.Ordinal))
        {
            response.AssertOpenAiError(HttpStatusCode.BadRequest, "incomplete_body");
        }
        else
        {
            var problem = response.AssertProblem(HttpStatusCode.BadRequest);
            Assert.Equal("Request body incomplete", problem.GetProperty("title").GetString());
        }

        await AssertNothingLeftHangingAsync();
    }

    [Fact]
    public async Task AClientThatHalfClosesMidBodyIsDroppedAtOnceAndNothingIsLeftHanging()
    {
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        await stream.WriteAsync(Ascii($"POST /infer/stream HTTP/1.1\r\n{HostAndClose}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            + "{\"prompt\":\"hi\""), Ct);
        tcp.Client.Shutdown(SocketShutdown.Send);

        // Kestrel takes the client's FIN for a disconnect and can answer nothing; what matters is that the
        // connection ends, and that if anything is written it is a client error.
        var received = await stream.ReadUntilClosedAsync(Ct).WaitAsync(Bound, Ct);

        if (received.Length > 0)
        {
            Assert.InRange((int)Parse(received).Status, 400, 499);
        }

        await AssertNothingLeftHangingAsync();
    }

    [Theory]
    [InlineData(long.MaxValue, false)] // 2^63 - 1, the largest length a frame can declare
    [InlineData(MaxMessageBytes + 1L, false)]
    [InlineData(long.MaxValue, true)] // the last frame of a message whose first one was 1 byte
    public async Task AWebSocketFrameDeclaringMoreThanTheLimitIsClosedWith1009AtOnceWithoutItsBytes(long declared, bool afterAFragment)
    {
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        await stream.WriteAsync(Ascii($"GET /infer/ws HTTP/1.1\r\nHost: {Gateway.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {Convert.ToBase64String(Guid.NewGuid().ToByteArray())}\r\nSec-WebSocket-Version: 13\r\n\r\n"), Ct);
        var head = await stream.ReadHeadAsync(Ct).WaitAsync(Bound, Ct);
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);

        if (afterAFragment)
        {
            // Text, not final, masked (a zero key), one byte of payload.
            await stream.WriteAsync(new byte[] { 0x01, 0x81, 0, 0, 0, 0, (byte)'{' }, Ct);
        }

        // A final text (or continuation) frame, masked, with a 64-bit length; then not one byte of its payload.
        var frame = new byte[14];
        frame[0] = afterAFragment ? (byte)0x80 : (byte)0x81;
        frame[1] = 0x80 | 127;
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(frame.AsSpan(2), declared);
        await stream.WriteAsync(frame, Ct);
        var sent = System.Diagnostics.Stopwatch.StartNew();

        var header = new byte[2];
        await stream.ReadExactlyAsync(header, Ct).AsTask().WaitAsync(Bound, Ct);
        var payload = new byte[header[1] & 0x7F];
        await stream.ReadExactlyAsync(payload, Ct).AsTask().WaitAsync(Bound, Ct);
        var closed = sent.Elapsed;
        Assert.Equal(0x88, header[0]);
        Assert.Equal(1009, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(payload));
        Assert.Contains($"{MaxMessageBytes} bytes", Encoding.UTF8.GetString(payload, 2, payload.Length - 2), StringComparison.Ordinal);

        // The client cannot answer the close in the middle of its frame: the connection is dropped, not held.
        await stream.ReadUntilClosedAsync(Ct).WaitAsync(Bound, Ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"1009 after {closed.TotalMilliseconds:0} ms, connection dropped after {sent.Elapsed.TotalMilliseconds:0} ms");
        await AssertNothingLeftHangingAsync();
    }

    /// <summary>The gateway's one slot is free again: the request before has ended on every side.</summary>
    private async Task AssertNothingLeftHangingAsync()
    {
        using var client = RunningServices.CreateClient(Gateway);
        await Eventually.UntilAsync(async () =>
        {
            using var response = await client.GetAsync("/infer/stream/some-stream", Ct);
            return response.StatusCode == HttpStatusCode.NotFound;
        }, Bound, "the gateway's only slot was not given back", Ct);
    }

    private string HostAndClose => $"Host: {Gateway.Authority}\r\nConnection: close\r\n";

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    private async Task<TcpClient> ConnectAsync()
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(Gateway.Host, Gateway.Port, Ct).AsTask().WaitAsync(Bound, Ct);
        return tcp;
    }

    /// <summary>Sends raw bytes on a new connection and reads the response until the server closes it.</summary>
    private async Task<RawResponse> SendAsync(byte[] request)
    {
        using var tcp = await ConnectAsync();
        var stream = tcp.GetStream();
        await stream.WriteAsync(request, Ct);
        return Parse(await stream.ReadUntilClosedAsync(Ct).WaitAsync(Bound, Ct));
    }

    private static RawResponse Parse(byte[] bytes)
    {
        var text = Encoding.Latin1.GetString(bytes);
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headEnd > 0, $"no HTTP response: '{text}'");
        var lines = text[..headEnd].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var body = text[(headEnd + 4)..];
        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Equals("chunked", StringComparison.OrdinalIgnoreCase))
        {
            var whole = new StringBuilder();
            for (var size = ChunkSize(body); size > 0; size = ChunkSize(body))
            {
                var start = body.IndexOf("\r\n", StringComparison.Ordinal) + 2;
                whole.Append(body, start, size);
                body = body[(start + size + 2)..];
            }

            body = whole.ToString();
        }

        return new RawResponse((HttpStatusCode)int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), headers,
            Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(body)));

        static int ChunkSize(string rest) =>
            int.Parse(rest[..rest.IndexOf("\r\n", StringComparison.Ordinal)], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed record RawResponse(HttpStatusCode Status, Dictionary<string, string> Headers, string Body)
    {
        public JsonElement AssertProblem(HttpStatusCode status)
        {
            Assert.Equal(status, Status);
            Assert.StartsWith("application/problem+json", Headers.GetValueOrDefault("Content-Type"), StringComparison.Ordinal);
            var problem = JsonDocument.Parse(Body).RootElement;
            Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
            return problem;
        }

        public void AssertOpenAiError(HttpStatusCode status, string code)
        {
            Assert.Equal(status, Status);
            Assert.StartsWith("application/json", Headers.GetValueOrDefault("Content-Type"), StringComparison.Ordinal);
            var error = JsonDocument.Parse(Body).RootElement.GetProperty("error");
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal(code, error.GetProperty("code").GetString());
        }
    }
}
