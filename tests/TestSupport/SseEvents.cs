using System.Net.Http.Json;
using System.Net.ServerSentEvents;
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

    /// <summary>
    /// Why <paramref name="events"/> is not a well-formed stream (start first, end last and once, token indices
    /// contiguous from 0, an error only right before the end), or null when it is.
    /// </summary>
    public static string? Malformation(this IReadOnlyList<ServerEvent> events)
    {
        if (events.Count == 0 || events[0].EventType != "start")
        {
            return "no start first";
        }

        if (events[^1].EventType != "end" || events.Count(e => e.EventType == "end") != 1)
        {
            return $"not one end, last: {events[^1].EventType}";
        }

        var indices = events.Where(e => e.EventType == "token").Select(e => e.Payload.GetProperty("index").GetInt32()).ToList();
        if (!indices.SequenceEqual(Enumerable.Range(0, indices.Count)))
        {
            return $"token indices not contiguous from 0: {string.Join(",", indices)}";
        }

        var error = events.ToList().FindIndex(e => e.EventType == "error");
        return error >= 0 && error != events.Count - 2 ? $"an error at {error} of {events.Count} events, not right before the end" : null;
    }
}
