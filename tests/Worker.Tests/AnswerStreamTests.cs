using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using VixAspire.Contracts;
using VixAspire.TestSupport;

namespace VixAspire.Worker.Tests;

/// <summary>
/// The whole answer in the token stream: an OpenAI-compatible upstream stand-in streams tool-call deltas (in every
/// shape providers use), reasoning, usage and finish reasons, and a client of the real API reads them back as
/// <c>tool_call</c>, <c>reasoning</c> and <c>end</c> envelopes; hostile shapes end bounded.
/// </summary>
public sealed class AnswerStreamTests(AnswerStreamTests.Fixture fixture) : IClassFixture<AnswerStreamTests.Fixture>
{
    private const string Scripted = "scripted-calls";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public sealed class Fixture : IAsyncLifetime
    {
        public RedisServer Redis { get; } = new();

        public FakeOpenAiUpstream Upstream { get; private set; } = null!;

        public ScriptedChatClient Provider { get; } = new();

        public RunningServices Services { get; private set; } = null!;

        public StreamingOptions Limits { get; } = new();

        public async ValueTask InitializeAsync()
        {
            await Redis.InitializeAsync();
            Upstream = await FakeOpenAiUpstream.StartAsync(TestContext.Current.CancellationToken);
            var settings = new Dictionary<string, string?>
            {
                ["Streaming:FirstTokenTimeout"] = "00:00:10",
                ["Providers:OpenAI:fake:Endpoint"] = Upstream.Endpoint.ToString(),
                ["Providers:OpenAI:fake:Model"] = "m-default",
                ["Providers:OpenAI:fake:Timeout"] = "00:00:10",
                [$"Inference:Models:{Scripted}:Provider"] = Scripted,
            };
            foreach (var name in new[] { "one", "trap", "whole", "reasoning", "filter", "tiny", "huge", "thinker", "notjson", "nameless", "paced", "maxtokens" })
            {
                settings[$"Inference:Models:a-{name}:Provider"] = "fake";
                settings[$"Inference:Models:a-{name}:UpstreamModel"] = $"m-{name}";
            }

            Services = await RunningServices.StartAsync(Redis, settings, gateway: false,
                workerServices: s => s.AddKeyedSingleton<IChatClient>(Scripted, Provider), cancellationToken: TestContext.Current.CancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            await Services.DisposeAsync();
            await Upstream.DisposeAsync();
            await Redis.DisposeAsync();
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private FakeOpenAiUpstream Upstream => fixture.Upstream;

    private async Task<List<ServerEvent>> StreamAsync(string model, int maxTokens = 50)
    {
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "call a tool", model, max_tokens = maxTokens }), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Null(events.Malformation());
        return events;
    }

    private static JsonElement Usage(List<ServerEvent> events) => events[^1].Payload.GetProperty("usage");

    [Fact]
    public async Task ToolCallFragmentsArriveAsTheUpstreamSentThemWithIdAndNameOnlyInTheFirst()
    {
        string[] arguments = ["{\"ci", "ty\":\"Par", "is\"}"];
        var reply = UpstreamReply.Stream("tool_calls",
            [UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_abc", "get_weather", "")), .. arguments.Select(a => UpstreamDelta.ToolCalls(new UpstreamToolCall(0, Arguments: a)))]);
        Upstream.Script("m-one", reply with { Usage = new UpstreamUsage(PromptTokens: 31, CompletionTokens: 9) });

        var events = await StreamAsync("a-one");

        var fragments = events.Where(e => e.EventType == "tool_call").Select(e => e.Payload).ToList();
        Assert.Equal(["", .. arguments], fragments.Select(f => f.GetProperty("arguments").GetString()));
        Assert.All(fragments, f => Assert.Equal(0, f.GetProperty("index").GetInt32()));
        Assert.Equal("call_abc", fragments[0].GetProperty("id").GetString());
        Assert.Equal("get_weather", fragments[0].GetProperty("name").GetString());
        Assert.All(fragments.Skip(1), f => Assert.False(f.TryGetProperty("id", out _) || f.TryGetProperty("name", out _)));
        Assert.Equal(["start", "tool_call", "tool_call", "tool_call", "tool_call", "end"], events.Select(e => e.EventType));
        Assert.Equal("tool_calls", events.EndReason());
        Assert.Equal(31, Usage(events).GetProperty("input_tokens").GetInt32());
        Assert.Equal(9, Usage(events).GetProperty("output_tokens").GetInt32());
        // The client asked for the usage chunk it needs.
        Assert.True(Assert.Single(Upstream.RequestsFor("m-one")).Body.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public async Task SeveralCallsInOneDeltaEachWithIdNameAndArgumentsLoseNoArgument()
    {
        // The known trap: two calls whole in one delta, then more arguments for both in another.
        Upstream.Script("m-trap", UpstreamReply.Stream("tool_calls",
            UpstreamDelta.Content("Checking both."),
            UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_a", "get_weather", "{\"city\":"), new UpstreamToolCall(1, "call_b", "get_time", "{\"zone\":")),
            UpstreamDelta.ToolCalls(new UpstreamToolCall(1, Arguments: "\"CET\"}"), new UpstreamToolCall(0, Arguments: "\"Oslo\"}"))));

        var events = await StreamAsync("a-trap");

        var calls = events.ToolCalls();
        Assert.Equal([(0, "call_a", "get_weather", "{\"city\":\"Oslo\"}"), (1, "call_b", "get_time", "{\"zone\":\"CET\"}")],
            calls.Select(c => (c.Index, c.Id, c.Name, c.Arguments)));
        Assert.Equal("Checking both.", events.Text());
        Assert.Equal("tool_calls", events.EndReason());
        // No usage chunk: VixAspire counts the envelopes, and reports no input it was not told.
        Assert.Equal(5, Usage(events).GetProperty("output_tokens").GetInt32());
        Assert.False(Usage(events).TryGetProperty("input_tokens", out _));
    }

    [Fact]
    public async Task CallsSentWholeOneDeltaEachKeepTheirPositionsInTheAnswer()
    {
        // Upstream indices need not start at 0 or be dense; the envelope's index is the call's position.
        Upstream.Script("m-whole", UpstreamReply.Stream("tool_calls",
            UpstreamDelta.ToolCalls(new UpstreamToolCall(3, "call_x", "search", "{\"q\":\"rust\"}")),
            UpstreamDelta.ToolCalls(new UpstreamToolCall(7, "call_y", "search", "{\"q\":\"go\"}"))));

        var events = await StreamAsync("a-whole");

        Assert.Equal([(0, "call_x", "{\"q\":\"rust\"}", 1), (1, "call_y", "{\"q\":\"go\"}", 1)],
            events.ToolCalls().Select(c => (c.Index, c.Id, c.Arguments, c.Fragments)));
    }

    [Fact]
    public async Task ReasoningContentArrivesAsReasoningEventsBeforeTheAnswer()
    {
        string[] thoughts = ["The user", " wants", " a greeting."];
        var reply = UpstreamReply.Stream("stop",
            [.. thoughts.Select(UpstreamDelta.Reasoning), UpstreamDelta.Content("Hello"), UpstreamDelta.Content("!")]);
        Upstream.Script("m-reasoning", reply with { Usage = new UpstreamUsage(12, 40) });

        var events = await StreamAsync("a-reasoning");

        Assert.Equal(["start", "reasoning", "reasoning", "reasoning", "token", "token", "end"], events.Select(e => e.EventType));
        Assert.Equal(string.Concat(thoughts), events.Reasoning());
        Assert.Equal("Hello!", events.Text());
        Assert.Equal("stop", events.EndReason());
        Assert.Equal(12, Usage(events).GetProperty("input_tokens").GetInt32());
        Assert.Equal(40, Usage(events).GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public async Task AContentFilterFinishEndsWithContentFilter()
    {
        Upstream.Script("m-filter", UpstreamReply.Stream("content_filter", UpstreamDelta.Content("I can")));

        var events = await StreamAsync("a-filter");

        Assert.Equal("content_filter", events.EndReason());
        Assert.Equal("I can", events.Text());
    }

    [Fact]
    public async Task MaxTokensCountsTextNotToolCallFragments()
    {
        Upstream.Script("m-maxtokens", UpstreamReply.Stream("tool_calls",
            [UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_m", "f", "")), .. Enumerable.Range(0, 6).Select(i => UpstreamDelta.ToolCalls(new UpstreamToolCall(0, Arguments: $"{i}")))]));

        var events = await StreamAsync("a-maxtokens", maxTokens: 2);

        Assert.Equal("012345", Assert.Single(events.ToolCalls()).Arguments);
        Assert.Equal("tool_calls", events.EndReason());
    }

    [Fact]
    public async Task AToolCallReachesTheClientWhileTheUpstreamIsStillStreamingIt()
    {
        var delay = TimeSpan.FromMilliseconds(150);
        var reply = UpstreamReply.Stream("tool_calls",
            [UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_p", "f", "")), .. Enumerable.Range(0, 8).Select(i => UpstreamDelta.ToolCalls(new UpstreamToolCall(0, Arguments: "x")))]);
        Upstream.Script("m-paced", reply with { DeltaDelay = delay });
        using var client = fixture.Services.CreateApiClient();
        using var response = await client.SendStreamingAsync(SseEvents.StreamRequest(new { prompt = "call", model = "a-paced" }), Ct);
        var clock = Stopwatch.StartNew();
        TimeSpan? firstCall = null;

        await foreach (var e in response.ReadEventsAsync(Ct).WithCancellation(Ct))
        {
            firstCall ??= e.EventType == "tool_call" ? clock.Elapsed : null;
        }

        // Nine deltas 150 ms apart: a worker that waited for the whole call would show its first fragment at the end.
        Assert.NotNull(firstCall);
        Assert.True(clock.Elapsed - firstCall > 4 * delay, $"first fragment at {firstCall}, end at {clock.Elapsed}");
    }

    [Fact]
    public async Task AHundredThousandTinyArgumentFragmentsEndBoundedWithEveryWrittenFragmentInOrder()
    {
        const int Fragments = 100_000;
        var piece = (int i) => ((char)('a' + (i % 26))).ToString();
        Upstream.Script("m-tiny", UpstreamReply.Stream("tool_calls",
            [UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_t", "write", "")), .. Enumerable.Range(0, Fragments).Select(i => UpstreamDelta.ToolCalls(new UpstreamToolCall(0, Arguments: piece(i))))]));

        var events = await StreamAsync("a-tiny");

        // Every fragment is an entry, like a token; the stream's entry cap (its MAXLEN) ends it before trimming its start.
        var call = Assert.Single(events.ToolCalls());
        Assert.Equal("max_bytes", events.EndReason());
        Assert.True(call.Fragments <= fixture.Limits.MaxStreamEntries - 3, $"{call.Fragments} fragments");
        Assert.True(call.Fragments > fixture.Limits.MaxStreamEntries / 2, $"{call.Fragments} fragments");
        Assert.Equal(string.Concat(Enumerable.Range(0, call.Fragments - 1).Select(piece)), call.Arguments);
    }

    [Fact]
    public async Task ASingleTwoMegabyteArgumentsFragmentIsSplitAndStopsAtTheByteCap()
    {
        var arguments = "{\"text\":\"" + new string('z', 2 * 1024 * 1024) + "\"}";
        Upstream.Script("m-huge", UpstreamReply.Stream("tool_calls", UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_h", "save", arguments))));

        var events = await StreamAsync("a-huge");

        var fragments = events.Where(e => e.EventType == "tool_call").Select(e => e.Payload.GetProperty("arguments").GetString()!).ToList();
        Assert.Equal("max_bytes", events.EndReason());
        Assert.True(fragments.Count > 1);
        Assert.All(fragments, f => Assert.True(Encoding.UTF8.GetByteCount(f) <= fixture.Limits.MaxTokenEventBytes));
        var streamed = string.Concat(fragments);
        Assert.True(Encoding.UTF8.GetByteCount(streamed) <= fixture.Limits.MaxStreamBytes);
        Assert.StartsWith(streamed, arguments, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReasoningPastTheByteCapEndsWithMaxBytes()
    {
        var chunk = new string('r', 64 * 1024);
        Upstream.Script("m-thinker", UpstreamReply.Stream("stop", [.. Enumerable.Repeat(UpstreamDelta.Reasoning(chunk), 20), UpstreamDelta.Content("never")]));

        var events = await StreamAsync("a-thinker", maxTokens: 1000);

        Assert.Equal("max_bytes", events.EndReason());
        var reasoning = events.Reasoning();
        Assert.True(reasoning.Length is > 0 and <= 1024 * 1024, $"{reasoning.Length} bytes of reasoning");
        Assert.Equal("", events.Text());
    }

    [Fact]
    public async Task ArgumentsThatAreNotJsonPassThroughAsTheUpstreamSentThem()
    {
        // As OpenAI does: arguments are text the model wrote, which the client parses (or not).
        string[] arguments = ["{city: Par", "is, \"unterminated"];
        Upstream.Script("m-notjson", UpstreamReply.Stream("tool_calls",
            UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_n", "get_weather", arguments[0])), UpstreamDelta.ToolCalls(new UpstreamToolCall(0, Arguments: arguments[1]))));

        var events = await StreamAsync("a-notjson");

        Assert.Equal(string.Concat(arguments), Assert.Single(events.ToolCalls()).Arguments);
        Assert.Equal("tool_calls", events.EndReason());
    }

    [Fact]
    public async Task ACallWithNoNameEndsWithAnErrorAndIsNotForwarded()
    {
        Upstream.Script("m-nameless", UpstreamReply.Stream("tool_calls",
            UpstreamDelta.Content("Let me check."), UpstreamDelta.ToolCalls(new UpstreamToolCall(0, "call_q", Arguments: "{}"))));

        var events = await StreamAsync("a-nameless");

        Assert.Equal(["start", "token", "error", "end"], events.Select(e => e.EventType));
        Assert.Equal(ErrorCodes.ProviderError, events[2].Payload.GetProperty("code").GetString());
        Assert.Equal("error", events.EndReason());
    }

    [Fact]
    public async Task AProvidersCompleteCallsAreSplitIntoFragmentsOfItsSerialisedArguments()
    {
        var note = new string('n', 10_000);
        fixture.Provider.Next = (_, ct) => CallsAsync(note, ct);

        var events = await StreamAsync(Scripted);

        var calls = events.ToolCalls();
        Assert.Equal([(0, "c1", "lookup"), (1, "c2", "remember")], calls.Select(c => (c.Index, c.Id, c.Name)));
        Assert.Equal(1, JsonDocument.Parse(calls[0].Arguments).RootElement.GetProperty("id").GetInt32());
        Assert.Equal(note, JsonDocument.Parse(calls[1].Arguments).RootElement.GetProperty("note").GetString());
        Assert.True(calls[1].Fragments >= 3, $"{calls[1].Fragments} fragments");
        Assert.All(events.Where(e => e.EventType == "tool_call"),
            e => Assert.True(Encoding.UTF8.GetByteCount(e.Payload.GetProperty("arguments").GetString()!) <= fixture.Limits.MaxTokenEventBytes));
        // The provider gave no finish reason: having called, the answer ends for its calls to run.
        Assert.Equal("tool_calls", events.EndReason());
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> CallsAsync(string note, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent("c1", "lookup", new Dictionary<string, object?> { ["id"] = 1 })]);
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent("c2", "remember", new Dictionary<string, object?> { ["note"] = note })]);
    }
}
