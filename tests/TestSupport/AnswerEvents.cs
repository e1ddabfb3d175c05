using System.Text;

namespace VixAspire.TestSupport;

/// <summary>A tool call put together from its <c>tool_call</c> events, and how many fragments it came in.</summary>
public sealed record GatheredCall(int Index, string? Id, string? Name, string Arguments, int Fragments);

/// <summary>Reads the answer's non-text events (<c>tool_call</c>, <c>reasoning</c>) out of a stream's events.</summary>
public static class AnswerEvents
{
    public static string Reasoning(this IEnumerable<ServerEvent> events) =>
        string.Concat(events.Where(e => e.EventType == "reasoning").Select(e => e.Payload.GetProperty("text").GetString()));

    /// <summary>The calls by index, in order; id and name as their first fragment gave them, arguments concatenated.</summary>
    public static List<GatheredCall> ToolCalls(this IEnumerable<ServerEvent> events)
    {
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Arguments, int Fragments)>();
        foreach (var e in events.Where(e => e.EventType == "tool_call"))
        {
            var payload = e.Payload;
            var index = payload.GetProperty("index").GetInt32();
            if (!calls.TryGetValue(index, out var call))
            {
                call = (payload.TryGetProperty("id", out var id) ? id.GetString() : null,
                    payload.TryGetProperty("name", out var name) ? name.GetString() : null, new StringBuilder(), 0);
            }

            call.Arguments.Append(payload.GetProperty("arguments").GetString());
            calls[index] = call with { Fragments = call.Fragments + 1 };
        }

        return [.. calls.Select(c => new GatheredCall(c.Key, c.Value.Id, c.Value.Name, c.Value.Arguments.ToString(), c.Value.Fragments))];
    }
}
