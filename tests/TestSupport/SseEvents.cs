using System.Net.ServerSentEvents;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace VixAspire.TestSupport;

/// <summary>One SSE event as a client sees it, with its envelope parsed.</summary>
public sealed record ServerEvent(string? Id, string EventType, string Data)
{
    private JsonElement? _envelope;

    public JsonElement Envelope => _envelope ??= JsonDocument.Parse(Data).RootElement.Clone();

    public string EnvelopeType => Envelope.GetProperty("type").GetString()!;

    public JsonElement Payload => Envelope.GetProperty("payload");
}

/// <summary>Reads SSE responses with the framework's own parser, as a real client would.</summary>
public static class SseEvents
{
    public static HttpRequestMessage StreamRequest(object body) =>
        new(HttpMethod.Post, "/infer/stream") { Content = JsonContent.Create(body) };

    /// <summary>Sends the request and returns the response as soon as its headers arrive.</summary>
    public static Task<HttpResponseMessage> SendStreamingAsync(this HttpClient client, HttpRequestMessage request, CancellationToken cancellationToken) =>
        client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public static async IAsyncEnumerable<ServerEvent> ReadEventsAsync(this HttpResponseMessage response,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var parser = SseParser.Create(body);
        await foreach (var item in parser.EnumerateAsync(cancellationToken))
        {
            yield return new ServerEvent(parser.LastEventId is { Length: > 0 } id ? id : null, item.EventType, item.Data);
        }
    }

    /// <summary>Reads the whole stream (until the server closes it).</summary>
    public static async Task<List<ServerEvent>> ReadAllEventsAsync(this HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var events = new List<ServerEvent>();
        await foreach (var e in response.ReadEventsAsync(cancellationToken))
        {
            events.Add(e);
        }

        return events;
    }

    public static string Text(this IEnumerable<ServerEvent> events)
    {
        var text = new StringBuilder();
        foreach (var e in events.Where(e => e.EventType == "token"))
        {
            text.Append(e.Payload.GetProperty("text").GetString());
        }

        return text.ToString();
    }

    public static string? EndReason(this IEnumerable<ServerEvent> events) =>
        events.LastOrDefault(e => e.EventType == "end")?.Payload.GetProperty("reason").GetString();
}
