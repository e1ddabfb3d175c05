using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The API stopped as SIGTERM stops it, with an SSE stream, an OpenAI stream and a WebSocket request open and no
/// worker (nothing else would end them; heartbeat 30 s): each closes at once without an end, so that its client
/// resumes elsewhere, and detaches so that the grace is judged from then on. A fresh API for each test.
/// </summary>
public sealed class GracefulShutdownTests : ServicesFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    public override ValueTask InitializeAsync() => StartAsync(new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:30" },
        workers: 0, gateway: false, cancellationToken: Ct);

    [Fact]
    public async Task StoppingTheHostClosesEveryOpenStreamAtOnceWithoutAnEndAndDetachesIt()
    {
        using var client = Services.CreateApiClient();
        using var sse = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "sse" }), Ct);
        var sseId = sse.Headers.Location!.OriginalString["/infer/stream/".Length..];
        await using var sseEvents = sse.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Assert.True(await sseEvents.MoveNextAsync().AsTask().WaitAsync(Bound, Ct));

        using var chat = await client.SendStreamingAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "synthetic", stream = true, messages = new[] { new { role = "user", content = "openai" } } }),
        }, Ct);
        using var chatBody = new StreamReader(await chat.Content.ReadAsStreamAsync(Ct));
        var roleChunk = await chatBody.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct);
        var chatId = JsonDocument.Parse(roleChunk!["data: ".Length..]).RootElement.GetProperty("id").GetString()!["chatcmpl-".Length..];

        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(Services.ApiAddress) { Scheme = "ws", Path = "/infer/ws" }.Uri, Ct).WaitAsync(Bound, Ct);
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "inference.request", request_id = "ws", payload = new { prompt = "ws" } }),
            WebSocketMessageType.Text, endOfMessage: true, Ct).WaitAsync(Bound, Ct);
        var socketMessages = ReadUntilCloseAsync(socket);
        await Eventually.UntilAsync(() => Task.FromResult(!socketMessages.Messages.IsEmpty), Bound, "the socket's start", Ct);
        var socketId = socketMessages.Messages.First().GetProperty("stream_id").GetString()!;

        var clock = Stopwatch.StartNew();
        await Services.Api.StopAsync(Ct).WaitAsync(Bound, Ct);
        var stoppedIn = clock.Elapsed;

        var sseRest = new List<ServerEvent>();
        while (await sseEvents.MoveNextAsync().AsTask().WaitAsync(Bound, Ct))
        {
            sseRest.Add(sseEvents.Current);
        }

        var chatRest = await chatBody.ReadToEndAsync(Ct).WaitAsync(Bound, Ct);
        await socketMessages.Closed.WaitAsync(Bound, Ct);

        Assert.InRange(stoppedIn, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        Assert.Empty(sseRest);
        Assert.DoesNotContain("[DONE]", chatRest);
        Assert.Equal((WebSocketCloseStatus)1012, socket.CloseStatus);
        Assert.Equal(["inference.start"], socketMessages.Messages.Select(m => m.GetProperty("type").GetString()));
        foreach (var id in new[] { sseId, chatId, socketId })
        {
            Assert.Equal(0, await AttachLeaseProbe.LiveLeasesAsync(Redis.Database, id));
            Assert.True(await Redis.Database.KeyExistsAsync(Contracts.RedisKeys.Left(id)), $"the leaving of {id} was not recorded");
        }
    }

    /// <summary>Receives text messages until the server's close, which it answers.</summary>
    private static SocketReading ReadUntilCloseAsync(ClientWebSocket socket)
    {
        var reading = new SocketReading();
        reading.Closed = Task.Run(async () =>
        {
            var buffer = new byte[16 * 1024];
            var message = new MemoryStream();
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), Ct);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, Ct);
                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    reading.Messages.Enqueue(JsonDocument.Parse(Encoding.UTF8.GetString(message.ToArray())).RootElement.Clone());
                    message.SetLength(0);
                }
            }
        }, Ct);
        return reading;
    }

    private sealed class SocketReading
    {
        public ConcurrentQueue<JsonElement> Messages { get; } = new();

        public Task Closed { get; set; } = Task.CompletedTask;
    }
}
