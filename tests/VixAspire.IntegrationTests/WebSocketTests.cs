using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// <c>GET /infer/ws</c> through the real gateway: several requests on one socket, cancel, closing, invalid and
/// oversized messages, keep-alive. The synthetic model runs at 20 ms a token; the disconnect grace is 0.5 s, a
/// message may be 4 KiB, the server pings every 2 s and at most 3 streams may run per client.
/// </summary>
public sealed class WebSocketTests(WebSocketTests.Fixture fixture, WebSocketTests.FaultyFixture faulty)
    : IClassFixture<WebSocketTests.Fixture>, IClassFixture<WebSocketTests.FaultyFixture>
{
    private const int MaxMessageBytes = 4096;

    public sealed class Fixture : ServicesFixture
    {
        public Uri SocketAddress { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(new Dictionary<string, string?>
            {
                ["Providers:Synthetic:FirstTokenDelay"] = "00:00:00",
                ["Providers:Synthetic:TokenDelay"] = "00:00:00.020",
                ["Streaming:DisconnectGrace"] = "00:00:00.500",
                ["Streaming:MaxRequestBodyBytes"] = MaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Streaming:HeartbeatInterval"] = "00:00:02",
                ["Streaming:MaxConcurrentStreamsPerClient"] = "3",
            });
            SocketAddress = new UriBuilder(Services.GatewayAddress!) { Scheme = "ws", Path = "/infer/ws" }.Uri;
        }
    }

    /// <summary>An API alone whose Redis client throws an unexpected exception whenever a request is queued.</summary>
    public sealed class FaultyFixture : ServicesFixture
    {
        public Uri SocketAddress { get; private set; } = null!;

        public override async ValueTask InitializeAsync()
        {
            await StartAsync(workers: 0, gateway: false,
                apiServices: s => s.AddSingleton(_ => FailingEnqueue.Wrap(Redis.Connection)));
            SocketAddress = new UriBuilder(Services.ApiAddress) { Scheme = "ws", Path = "/infer/ws" }.Uri;
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static object Request(string requestId, object payload) => new { type = "inference.request", request_id = requestId, payload };

    private Task<SocketClient> ConnectAsync() => ConnectAsync(fixture.SocketAddress);

    private static async Task<SocketClient> ConnectAsync(Uri address)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(address, Ct).WaitAsync(Bound, Ct);
        return new SocketClient(socket);
    }

    [Fact]
    public async Task OneRequestStreamsStartTokensThenEndTaggedWithItsIds()
    {
        using var client = await ConnectAsync();

        await client.SendAsync(Request("first", new { prompt = "over a socket", max_tokens = 8 }));
        var messages = await client.ReadUntilEndAsync("first");

        Assert.Equal(["inference.start", .. Enumerable.Repeat("inference.token", 8), "inference.end"], messages.Select(Type));
        Assert.All(messages, m => Assert.Equal("first", RequestId(m)));
        var streamId = StreamId(messages[0]);
        Assert.Matches("^[0-9a-f]{32}$", streamId);
        Assert.All(messages, m => Assert.Equal(streamId, StreamId(m)));
        Assert.Equal(streamId, Payload(messages[0]).GetProperty("id").GetString());
        Assert.Equal(Enumerable.Range(0, 8), Tokens(messages).Select(t => t.GetProperty("index").GetInt32()));
        Assert.Equal("length", EndReason(messages));

        // The stream id is an ordinary stream: SSE replays the same text.
        using var http = fixture.Services.CreateClient();
        using var replay = await http.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Get, $"/infer/stream/{streamId}"), Ct);
        var events = await replay.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("length", events.EndReason());
        Assert.Equal(events.Text(), string.Concat(Tokens(messages).Select(t => t.GetProperty("text").GetString())));
    }

    [Fact]
    public async Task TwoRequestsOnOneSocketRunConcurrentlyEachCompleteAndInOrder()
    {
        using var client = await ConnectAsync();

        await client.SendAsync(Request("a", new { prompt = "alpha", max_tokens = 30 }));
        await client.SendAsync(Request("b", new { prompt = "beta", max_tokens = 30 }));
        var messages = await client.ReadUntilAsync(all => all.Count(m => Type(m) == "inference.end") == 2);

        foreach (var tag in new[] { "a", "b" })
        {
            var own = messages.Where(m => RequestId(m) == tag).ToList();
            Assert.Equal(["inference.start", .. Enumerable.Repeat("inference.token", 30), "inference.end"], own.Select(Type));
            Assert.Equal(Enumerable.Range(0, 30), Tokens(own).Select(t => t.GetProperty("index").GetInt32()));
            Assert.Equal("length", EndReason(own));
            Assert.Single(own.Select(StreamId).Distinct());
        }

        Assert.NotEqual(StreamId(messages.First(m => RequestId(m) == "a")), StreamId(messages.First(m => RequestId(m) == "b")));
        // Concurrent, not one after the other: each request's first token arrives before the other's end.
        Assert.True(FirstIndex(messages, "b", "inference.token") < FirstIndex(messages, "a", "inference.end"));
        Assert.True(FirstIndex(messages, "a", "inference.token") < FirstIndex(messages, "b", "inference.end"));
    }

    [Fact]
    public async Task CancellingOneRequestEndsItWithCancelledWhileTheOtherRunsToLength()
    {
        using var client = await ConnectAsync();

        await client.SendAsync(Request("keep", new { prompt = "keep going", max_tokens = 40 }));
        await client.SendAsync(Request("stop", new { prompt = "stop me", max_tokens = 5000 }));
        var messages = await client.ReadUntilAsync(all => all.Any(m => RequestId(m) == "stop" && Type(m) == "inference.token"));
        await client.SendAsync(new { type = "inference.cancel", request_id = "stop" });
        messages.AddRange(await client.ReadUntilAsync(all => all.Count(m => Type(m) == "inference.end") == 2));

        var stopped = messages.Where(m => RequestId(m) == "stop").ToList();
        var kept = messages.Where(m => RequestId(m) == "keep").ToList();
        Assert.Equal("cancelled", EndReason(stopped));
        Assert.InRange(Tokens(stopped).Count(), 1, 4999);
        Assert.Equal("length", EndReason(kept));
        Assert.Equal(Enumerable.Range(0, 40), Tokens(kept).Select(t => t.GetProperty("index").GetInt32()));
    }

    [Fact]
    public async Task TooManyStreamsIsRefusedOnItsRequestAndACancelWithoutIdsEndsEveryRequest()
    {
        using var client = await ConnectAsync();
        foreach (var tag in new[] { "s1", "s2", "s3" })
        {
            await client.SendAsync(Request(tag, new { prompt = tag, max_tokens = 5000 }));
        }

        await client.ReadUntilAsync(all => all.Count(m => Type(m) == "inference.start") == 3);
        await client.SendAsync(Request("s4", new { prompt = "one too many", max_tokens = 5 }));
        var refused = await client.ReadUntilEndAsync("s4");
        await client.SendAsync(new { type = "inference.cancel" });
        var messages = await client.ReadUntilAsync(all => all.Count(m => Type(m) == "inference.end") == 3);

        Assert.Equal(["inference.error", "inference.end"], refused.Where(m => RequestId(m) == "s4").Select(Type));
        var error = Payload(refused.First(m => RequestId(m) == "s4"));
        Assert.Equal("too_many_streams", error.GetProperty("code").GetString());
        Assert.True(error.GetProperty("retryable").GetBoolean());
        Assert.Null(StreamId(refused.Last()));
        foreach (var tag in new[] { "s1", "s2", "s3" })
        {
            Assert.Equal("cancelled", EndReason(messages.Where(m => RequestId(m) == tag)));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClosingTheSocketCancelsItsRunningRequestAfterTheGrace(bool closeHandshake)
    {
        using var client = await ConnectAsync();
        await client.SendAsync(Request("abandoned", new { prompt = "leave me", max_tokens = 5000 }));
        var started = await client.ReadUntilAsync(all => all.Any(m => Type(m) == "inference.token"));
        var streamId = StreamId(started[0])!;

        var closed = Stopwatch.StartNew();
        if (closeHandshake)
        {
            await client.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct).WaitAsync(Bound, Ct);
            Assert.Equal(WebSocketCloseStatus.NormalClosure, client.Socket.CloseStatus);
        }
        else
        {
            client.Socket.Abort();
        }

        var entries = await TokenStreams.WaitForEndAsync(fixture.Redis.Connection, streamId, Ct);
        var delay = closed.Elapsed;

        Assert.Equal("cancelled", TokenStreams.PayloadOf(entries[^1]).GetProperty("reason").GetString());
        Assert.InRange(entries.Count(e => TokenStreams.EventOf(e) == EventNames.Token), 1, 4999);
        Assert.True(delay >= TimeSpan.FromMilliseconds(450), $"cancelled after {delay}, before the grace");
        // The generation held the client's slot until its end, though its socket was gone; the worker frees it then.
        await Eventually.UntilAsync(async () => await fixture.Redis.Database.SortedSetScoreAsync(RedisKeys.ClientStreams("ip:127.0.0.1"), streamId) is null,
            Bound, "the ended generation's slot freed", Ct);
    }

    [Fact]
    public async Task AnInvalidRequestGetsErrorThenEndAndTheSocketKeepsWorking()
    {
        using var client = await ConnectAsync();

        await client.SendAsync(Request("empty", new { prompt = "", max_tokens = 0 }));
        var invalid = await client.ReadUntilEndAsync("empty");
        await client.SendAsync(Request("unknown", new { prompt = "hi", model = "no-such-model" }));
        var unknown = await client.ReadUntilEndAsync("unknown");
        await client.SendAsync(new { type = "inference.request", request_id = "typed", payload = new { prompt = "hi", max_tokens = "many" } });
        var mistyped = await client.ReadUntilEndAsync("typed");
        await client.SendAsync(Request("valid", new { prompt = "after the mistakes", max_tokens = 3 }));
        var valid = await client.ReadUntilEndAsync("valid");

        AssertRefused(invalid, "invalid_request", "max_tokens");
        AssertRefused(unknown, "model_not_found", "no-such-model");
        AssertRefused(mistyped, "invalid_request", "max_tokens");
        Assert.Equal(["inference.start", "inference.token", "inference.token", "inference.token", "inference.end"], valid.Select(Type));
        Assert.Equal("length", EndReason(valid));
    }

    [Fact]
    public async Task MalformedMessagesGetInvalidMessageAndTheSocketStaysOpen()
    {
        using var client = await ConnectAsync();

        await client.SendTextAsync("this is not { json");
        var notJson = await client.ReceiveAsync();
        await client.SendAsync(new { type = "inference.bogus", request_id = "odd" });
        var unknownType = await client.ReceiveAsync();
        await client.Socket.SendAsync("{}"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: true, Ct).WaitAsync(Bound, Ct);
        var binary = await client.ReceiveAsync();
        await client.SendAsync(Request("still-open", new { prompt = "still there?", max_tokens = 2 }));
        var valid = await client.ReadUntilEndAsync("still-open");

        foreach (var message in new[] { notJson, unknownType, binary })
        {
            Assert.Equal("inference.error", Type(message));
            Assert.Equal("invalid_message", Payload(message).GetProperty("code").GetString());
            Assert.False(Payload(message).GetProperty("retryable").GetBoolean());
            Assert.Null(StreamId(message));
        }

        Assert.Null(RequestId(notJson));
        Assert.Equal("odd", RequestId(unknownType));
        Assert.Contains("inference.bogus", Payload(unknownType).GetProperty("message").GetString());
        Assert.Equal("length", EndReason(valid));
        Assert.Equal(WebSocketState.Open, client.Socket.State);
    }

    [Fact]
    public async Task AMessageOverTheLimitClosesTheSocketWith1009()
    {
        using var client = await ConnectAsync();
        await client.SendAsync(Request("fits", new { prompt = new string('a', MaxMessageBytes - 200), max_tokens = 2 }));
        Assert.Equal("length", EndReason(await client.ReadUntilEndAsync("fits")));

        // Sent in several frames: the limit is on the whole message.
        var oversized = JsonSerializer.SerializeToUtf8Bytes(Request("too-big", new { prompt = new string('b', 3 * MaxMessageBytes) }));
        for (var offset = 0; offset < oversized.Length; offset += 1024)
        {
            var frame = oversized.AsMemory(offset, Math.Min(1024, oversized.Length - offset));
            await client.Socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: offset + 1024 >= oversized.Length, Ct).AsTask().WaitAsync(Bound, Ct);
        }

        var buffer = new byte[1024];
        var result = await client.Socket.ReceiveAsync(buffer.AsMemory(), Ct).AsTask().WaitAsync(Bound, Ct);

        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.Socket.CloseStatus);
        Assert.Contains(MaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), client.Socket.CloseStatusDescription);
        await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, Ct).WaitAsync(Bound, Ct);
    }

    [Fact]
    public async Task ARequestWhoseTaskFailsUnexpectedlyStillGetsErrorThenEndAndTheSocketKeepsWorking()
    {
        using var client = await ConnectAsync(faulty.SocketAddress);

        await client.SendAsync(Request("doomed", new { prompt = "queue me if you can", max_tokens = 3 }));
        var doomed = await client.ReadUntilEndAsync("doomed");
        await client.SendAsync(new { type = "inference.bogus", request_id = "after" });
        var after = await client.ReceiveAsync();

        Assert.Equal(["inference.error", "inference.end"], doomed.Select(Type));
        Assert.All(doomed, m => Assert.Equal("doomed", RequestId(m)));
        var error = Payload(doomed[0]);
        Assert.Equal("stream_unavailable", error.GetProperty("code").GetString());
        Assert.True(error.GetProperty("retryable").GetBoolean());
        Assert.Equal("error", EndReason(doomed));
        Assert.Equal("invalid_message", Payload(after).GetProperty("code").GetString());
        Assert.Equal(WebSocketState.Open, client.Socket.State);
    }

    [Fact]
    public async Task ThePlainGetWithoutUpgradeGets400ProblemDetails()
    {
        using var http = fixture.Services.CreateClient();

        using var response = await http.GetAsync("/infer/ws", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Contains("WebSocket", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task TheServerPingsAnIdleSocketAndDropsAClientThatNeverAnswers()
    {
        // A raw connection, so the test sees control frames and can leave a ping unanswered.
        var gateway = fixture.Services.GatewayAddress!;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(gateway.Host, gateway.Port, Ct).AsTask().WaitAsync(Bound, Ct);
        var stream = tcp.GetStream();
        var handshake = $"GET /infer/ws HTTP/1.1\r\nHost: {gateway.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {Convert.ToBase64String(Guid.NewGuid().ToByteArray())}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(handshake), Ct);

        var head = await stream.ReadHeadAsync(Ct).WaitAsync(Bound, Ct);
        var frameHeader = new byte[2];
        await stream.ReadExactlyAsync(frameHeader, Ct).AsTask().WaitAsync(Bound, Ct);
        var unanswered = Stopwatch.StartNew();
        await stream.ReadUntilClosedAsync(Ct).WaitAsync(Bound, Ct);
        var dropped = unanswered.Elapsed;

        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Equal(0x9, frameHeader[0] & 0x0F);
        // Dropped for the unanswered ping (timeout 2 s), not at once for some other reason.
        Assert.True(dropped >= TimeSpan.FromSeconds(1), $"dropped after {dropped}");
        TestContext.Current.TestOutputHelper?.WriteLine($"unanswered ping to dropped connection: {dropped.TotalMilliseconds:0} ms");
    }

    private static void AssertRefused(List<JsonElement> messages, string code, string mentioned)
    {
        Assert.Equal(["inference.error", "inference.end"], messages.Select(Type));
        Assert.All(messages, m => Assert.Null(StreamId(m)));
        var error = Payload(messages[0]);
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(mentioned, error.GetProperty("message").GetString());
        Assert.False(error.GetProperty("retryable").GetBoolean());
        Assert.Equal("error", EndReason(messages));
    }

    private static int FirstIndex(List<JsonElement> messages, string requestId, string type) =>
        messages.FindIndex(m => RequestId(m) == requestId && Type(m) == type);

    private static string? Type(JsonElement message) => message.GetProperty("type").GetString();

    private static string? RequestId(JsonElement message) => message.GetProperty("request_id").GetString();

    private static string? StreamId(JsonElement message) => message.GetProperty("stream_id").GetString();

    private static JsonElement Payload(JsonElement message) => message.GetProperty("payload");

    private static IEnumerable<JsonElement> Tokens(IEnumerable<JsonElement> messages) =>
        messages.Where(m => Type(m) == "inference.token").Select(Payload);

    private static string? EndReason(IEnumerable<JsonElement> messages) =>
        messages.Where(m => Type(m) == "inference.end").Select(m => Payload(m).GetProperty("reason").GetString()).Single();

    /// <summary>A <see cref="ClientWebSocket"/> that reads whole JSON text messages, each wait bounded.</summary>
    private sealed class SocketClient(ClientWebSocket socket) : IDisposable
    {
        private readonly List<JsonElement> _unread = [];

        public ClientWebSocket Socket => socket;

        public Task SendAsync(object message) => SendTextAsync(JsonSerializer.Serialize(message));

        public async Task SendTextAsync(string text) =>
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);

        public Task<JsonElement> ReceiveAsync() => socket.ReceiveJsonAsync(Bound, Ct);

        /// <summary>Reads until <paramref name="done"/> holds for everything read since the last call; returns that.</summary>
        public async Task<List<JsonElement>> ReadUntilAsync(Func<List<JsonElement>, bool> done)
        {
            while (!done(_unread))
            {
                _unread.Add(await ReceiveAsync());
            }

            var read = _unread.ToList();
            _unread.Clear();
            return read;
        }

        public Task<List<JsonElement>> ReadUntilEndAsync(string requestId) =>
            ReadUntilAsync(all => all.Any(m => RequestId(m) == requestId && Type(m) == "inference.end"));

        public void Dispose() => socket.Dispose();
    }
}

/// <summary>
/// A Redis client that fails with an exception the API does not expect (not a <see cref="RedisException"/>) whenever
/// a batch is created, which only queueing a request does; every other call goes to the real client.
/// </summary>
public class FailingEnqueue : DispatchProxy
{
    private object _inner = null!;

    public static IConnectionMultiplexer Wrap(IConnectionMultiplexer inner) => Create<IConnectionMultiplexer>(inner);

    private static T Create<T>(T inner) where T : class
    {
        var proxy = DispatchProxy.Create<T, FailingEnqueue>();
        ((FailingEnqueue)(object)proxy)._inner = inner;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        switch (targetMethod!.Name)
        {
            // The command that queues a request (its keys include the queue), as any front end sends it.
            case nameof(IDatabase.ScriptEvaluateAsync) when args is [_, RedisKey[] keys, ..] && keys.Contains(RedisKeys.Requests):
                throw new InvalidOperationException("Injected fault: queueing a request.");
            case nameof(IDisposable.Dispose):
                // The connection is the test's RedisServer's, which disposes it.
                return null;
            case nameof(IAsyncDisposable.DisposeAsync):
                return ValueTask.CompletedTask;
        }

        try
        {
            var result = targetMethod.Invoke(_inner, args);
            return targetMethod.Name == nameof(IConnectionMultiplexer.GetDatabase) ? Create((IDatabase)result!) : result;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(ex.InnerException);
            throw;
        }
    }
}
