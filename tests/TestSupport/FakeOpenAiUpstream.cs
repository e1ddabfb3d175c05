using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace VixAspire.TestSupport;

public enum UpstreamBehavior
{
    /// <summary>200 and the pieces as <c>chat.completion.chunk</c> events, a finish chunk, then <c>data: [DONE]</c>.</summary>
    Stream,

    /// <summary>An error status with an OpenAI-style error body (and <c>Retry-After</c> when given).</summary>
    Status,

    /// <summary>Never answers: no headers, no bytes, until the client goes away.</summary>
    StallBeforeHeaders,

    /// <summary>Sends 200 and the SSE headers, then nothing.</summary>
    StallAfterHeaders,

    /// <summary>Sends <see cref="UpstreamReply.AfterChunks"/> chunks, then closes the connection in the middle of the body.</summary>
    CutMidStream,

    /// <summary>Sends <see cref="UpstreamReply.AfterChunks"/> chunks, then a chunk that is not JSON, then <c>[DONE]</c>.</summary>
    MalformedChunk,

    /// <summary>200 and a chunk per delta of <see cref="UpstreamReply.Deltas"/>, the finish chunk, a usage chunk when given, then <c>[DONE]</c>.</summary>
    Deltas,
}

/// <summary>One entry of a delta's <c>tool_calls</c>; what is null is left out, as providers leave it out of later fragments.</summary>
public sealed record UpstreamToolCall(int Index, string? Id = null, string? Name = null, string? Arguments = null);

/// <summary>Token counts for the usage chunk, as <c>stream_options.include_usage</c> makes OpenAI send them.</summary>
public sealed record UpstreamUsage(int PromptTokens, int CompletionTokens);

/// <summary>The <c>delta</c> objects of chunks, as JSON text.</summary>
public static class UpstreamDelta
{
    public static string Content(string text) => JsonSerializer.Serialize(new { content = text });

    /// <summary>The non-standard field vLLM, DeepSeek, llama.cpp and Ollama stream reasoning in.</summary>
    public static string Reasoning(string text) => JsonSerializer.Serialize(new { reasoning_content = text });

    /// <summary>Several calls may share one delta, and one call's id, name and arguments may all come in it.</summary>
    public static string ToolCalls(params UpstreamToolCall[] calls)
    {
        var entries = calls.Select(c =>
        {
            var function = new Dictionary<string, string>();
            if (c.Name is not null)
            {
                function["name"] = c.Name;
            }

            if (c.Arguments is not null)
            {
                function["arguments"] = c.Arguments;
            }

            var entry = new Dictionary<string, object> { ["index"] = c.Index, ["function"] = function };
            if (c.Id is not null)
            {
                entry["id"] = c.Id;
                entry["type"] = "function";
            }

            return entry;
        });
        return JsonSerializer.Serialize(new { tool_calls = entries });
    }
}

/// <summary>How the fake upstream answers one request.</summary>
public sealed record UpstreamReply(UpstreamBehavior Behavior, IReadOnlyList<string> Pieces, int StatusCode = 200, string? RetryAfter = null, int AfterChunks = 0)
{
    /// <summary>The <c>delta</c> JSON of each chunk, for <see cref="UpstreamBehavior.Deltas"/>.</summary>
    public IReadOnlyList<string> Deltas { get; init; } = [];

    /// <summary>The finish chunk's <c>finish_reason</c>.</summary>
    public string FinishReason { get; init; } = "stop";

    public UpstreamUsage? Usage { get; init; }

    /// <summary>A pause before each delta (none: the deltas go out as fast as the socket takes them).</summary>
    public TimeSpan DeltaDelay { get; init; }

    public static UpstreamReply Stream(string finishReason, params IEnumerable<string> deltas) =>
        new(UpstreamBehavior.Deltas, []) { Deltas = [.. deltas], FinishReason = finishReason };

    public static UpstreamReply Text(params string[] pieces) => new(UpstreamBehavior.Stream, pieces);

    public static UpstreamReply Status(int statusCode, string? retryAfter = null) => new(UpstreamBehavior.Status, [], statusCode, retryAfter);

    public static UpstreamReply StallBeforeHeaders() => new(UpstreamBehavior.StallBeforeHeaders, []);

    public static UpstreamReply StallAfterHeaders() => new(UpstreamBehavior.StallAfterHeaders, []);

    public static UpstreamReply CutAfter(int chunks, params string[] pieces) => new(UpstreamBehavior.CutMidStream, pieces, AfterChunks: chunks);

    public static UpstreamReply MalformedAfter(int chunks, params string[] pieces) => new(UpstreamBehavior.MalformedChunk, pieces, AfterChunks: chunks);
}

/// <summary>One request the fake received.</summary>
public sealed record UpstreamRequest(string Model, long Timestamp, string? Authorization, JsonElement Body);

/// <summary>
/// An OpenAI-compatible upstream on a loopback Kestrel port, speaking <c>POST /v1/chat/completions</c> with
/// <c>stream: true</c> as OpenAI does (<c>data: {chat.completion.chunk}</c> ... <c>data: [DONE]</c>). Each
/// upstream model name has its own script of replies, used in order (the last one repeats), so tests that
/// share one fake stay apart by using different model names. Error replies carry <see cref="SecretDetail"/>
/// in their body and status text, for tests that check nothing of it reaches a client.
/// </summary>
public sealed class FakeOpenAiUpstream : IAsyncDisposable
{
    public const string SecretDetail = "upstream-secret-detail-5be1";

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never };

    private readonly ConcurrentDictionary<string, ReplyScript> _scripts = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<UpstreamRequest> _requests = new();
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication _app = null!;

    private FakeOpenAiUpstream()
    {
    }

    /// <summary>The API base to configure as an upstream's <c>Endpoint</c>, e.g. <c>http://127.0.0.1:5123/v1</c>.</summary>
    public Uri Endpoint { get; private set; } = null!;

    public static async Task<FakeOpenAiUpstream> StartAsync(CancellationToken cancellationToken = default)
    {
        var fake = new FakeOpenAiUpstream();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapPost("/v1/chat/completions", fake.HandleAsync);
        await app.StartAsync(cancellationToken);
        fake._app = app;
        fake.Endpoint = new Uri(new Uri(app.Urls.First()), "/v1");
        return fake;
    }

    /// <summary>Replies for requests naming <paramref name="model"/>, in order; the last one repeats.</summary>
    public void Script(string model, params UpstreamReply[] replies)
    {
        ArgumentOutOfRangeException.ThrowIfZero(replies.Length);
        _scripts[model] = new ReplyScript(replies);
    }

    public IReadOnlyList<UpstreamRequest> RequestsFor(string model) => [.. _requests.Where(r => r.Model == model)];

    public int RequestCount(string model) => _requests.Count(r => r.Model == model);

    private async Task HandleAsync(HttpContext context)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var ct = aborted.Token;
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: ct);
        var model = body.RootElement.TryGetProperty("model", out var m) ? m.GetString() ?? "" : "";
        _requests.Enqueue(new UpstreamRequest(model, Stopwatch.GetTimestamp(), context.Request.Headers.Authorization.ToString(), body.RootElement.Clone()));

        if (!_scripts.TryGetValue(model, out var script))
        {
            await WriteErrorAsync(context, new UpstreamReply(UpstreamBehavior.Status, [], StatusCodes.Status404NotFound), ct);
            return;
        }

        var reply = script.Next();
        try
        {
            switch (reply.Behavior)
            {
                case UpstreamBehavior.Status:
                    await WriteErrorAsync(context, reply, ct);
                    return;
                case UpstreamBehavior.StallBeforeHeaders:
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                    return;
                case UpstreamBehavior.StallAfterHeaders:
                    await StartStreamAsync(context, ct);
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                    return;
                case UpstreamBehavior.CutMidStream:
                    await CutMidStreamAsync(context, model, reply, ct);
                    return;
                case UpstreamBehavior.Deltas:
                    await StreamDeltasAsync(context, model, reply, ct);
                    return;
            }

            await StartStreamAsync(context, ct);
            var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
            var sent = 0;
            foreach (var piece in reply.Pieces)
            {
                if (sent == reply.AfterChunks && reply.Behavior == UpstreamBehavior.MalformedChunk)
                {
                    await WriteEventAsync(context, "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":", ct);
                }

                await WriteEventAsync(context, Chunk(id, model, piece, finishReason: null), ct);
                sent++;
            }

            await WriteEventAsync(context, Chunk(id, model, null, "stop"), ct);
            await WriteEventAsync(context, "[DONE]", ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client gave up (or the fake is stopping): nothing more to send.
        }
    }

    /// <summary>
    /// Writes the response straight to the socket, then closes the sending side mid-body (a FIN inside a chunked
    /// body). Kestrel's own abort resets the connection, and a reset can discard chunks the client has not read
    /// yet; this way the client reads every chunk sent, then finds the body cut short.
    /// </summary>
    private static async Task CutMidStreamAsync(HttpContext context, string model, UpstreamReply reply, CancellationToken ct)
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket
            ?? throw new InvalidOperationException("The fake upstream needs Kestrel's socket transport.");
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var raw = new StringBuilder("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
        foreach (var piece in reply.Pieces.Take(reply.AfterChunks))
        {
            var data = $"data: {Chunk(id, model, piece, finishReason: null)}\n\n";
            raw.Append(CultureInfo.InvariantCulture, $"{Encoding.UTF8.GetByteCount(data):X}\r\n{data}\r\n");
        }

        await socket.SendAsync(Encoding.UTF8.GetBytes(raw.ToString()), SocketFlags.None, ct);
        socket.Shutdown(SocketShutdown.Send);
        // Hold the connection until the client, having read to the cut, closes it.
        await Task.Delay(Timeout.InfiniteTimeSpan, ct);
    }

    private static async Task StreamDeltasAsync(HttpContext context, string model, UpstreamReply reply, CancellationToken ct)
    {
        await StartStreamAsync(context, ct);
        var head = "{\"id\":\"chatcmpl-" + Guid.NewGuid().ToString("N") + "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":"
            + JsonSerializer.Serialize(model) + ",\"choices\":";
        var body = context.Response.Body;
        var sent = 0;
        foreach (var delta in reply.Deltas)
        {
            if (reply.DeltaDelay > TimeSpan.Zero)
            {
                await Task.Delay(reply.DeltaDelay, ct);
            }

            await body.WriteAsync(Encoding.UTF8.GetBytes($"data: {head}[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}\n\n"), ct);
            // Flushed one by one when paced; in bulk otherwise, or a hundred thousand deltas take a flush each.
            if (reply.DeltaDelay > TimeSpan.Zero || ++sent % 256 == 0)
            {
                await body.FlushAsync(ct);
            }
        }

        await WriteEventAsync(context, head + $"[{{\"index\":0,\"delta\":{{}},\"finish_reason\":{JsonSerializer.Serialize(reply.FinishReason)}}}]}}", ct);
        if (reply.Usage is { } usage)
        {
            await WriteEventAsync(context, head + $"[],\"usage\":{{\"prompt_tokens\":{usage.PromptTokens},\"completion_tokens\":{usage.CompletionTokens},"
                + $"\"total_tokens\":{usage.PromptTokens + usage.CompletionTokens}}}}}", ct);
        }

        await WriteEventAsync(context, "[DONE]", ct);
    }

    private static async Task StartStreamAsync(HttpContext context, CancellationToken ct)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.StartAsync(ct);
        await context.Response.Body.FlushAsync(ct);
    }

    private static async Task WriteEventAsync(HttpContext context, string data, CancellationToken ct)
    {
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes($"data: {data}\n\n"), ct);
        await context.Response.Body.FlushAsync(ct);
    }

    private static async Task WriteErrorAsync(HttpContext context, UpstreamReply reply, CancellationToken ct)
    {
        context.Response.StatusCode = reply.StatusCode;
        if (context.Features.Get<IHttpResponseFeature>() is { } feature)
        {
            feature.ReasonPhrase = "Failed " + SecretDetail;
        }

        if (reply.RetryAfter is not null)
        {
            context.Response.Headers.RetryAfter = reply.RetryAfter;
        }

        context.Response.ContentType = "application/json";
        var error = new { error = new { message = $"The upstream failed: {SecretDetail}", type = "server_error", param = (string?)null, code = SecretDetail } };
        await context.Response.WriteAsync(JsonSerializer.Serialize(error, Json), ct);
    }

    private static string Chunk(string id, string model, string? content, string? finishReason)
    {
        object delta = content is null ? new { } : new { role = "assistant", content };
        var chunk = new
        {
            id,
            @object = "chat.completion.chunk",
            created = 1_700_000_000,
            model,
            choices = new[] { new { index = 0, delta, finish_reason = finishReason } },
        };
        return JsonSerializer.Serialize(chunk, Json);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private sealed class ReplyScript(UpstreamReply[] replies)
    {
        private int _next = -1;

        public UpstreamReply Next() => replies[Math.Min(Interlocked.Increment(ref _next), replies.Length - 1)];
    }
}
