using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

/// <summary>
/// The worker's own stop-sequence cut, over a scripted provider that records how far it was read and whether it
/// was disposed: the text ends just before the first stop sequence wherever the chunk boundaries fall, and
/// nothing is held back longer than it could still be the start of one.
/// </summary>
public sealed class StopSequenceChatClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(List<ChatResponseUpdate> Updates, ScriptedChatClient Inner)> CutAsync(
        string[] chunks, string[]? stop, ChatFinishReason? finish = null, int? maxTokens = null)
    {
        var inner = new ScriptedChatClient(chunks, finish);
        using var client = new StopSequenceChatClient(inner);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hi")],
            new ChatOptions { StopSequences = stop, MaxOutputTokens = maxTokens }, Ct).WithCancellation(Ct))
        {
            updates.Add(update);
        }

        return (updates, inner);
    }

    private static string Text(IEnumerable<ChatResponseUpdate> updates) => string.Concat(updates.Select(u => u.Text));

    private static ChatFinishReason? Finish(IEnumerable<ChatResponseUpdate> updates) => updates.LastOrDefault(u => u.FinishReason is not null)?.FinishReason;

    /// <summary>The text is <paramref name="expected"/>, ends with Stop, and the provider was read <paramref name="pulled"/> updates far, then disposed.</summary>
    private static void AssertCut(List<ChatResponseUpdate> updates, ScriptedChatClient inner, string expected, int pulled)
    {
        Assert.Equal(expected, Text(updates));
        Assert.Equal(ChatFinishReason.Stop, Finish(updates));
        Assert.Equal(pulled, inner.Pulled);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public async Task AStopSequenceInsideOneChunkCutsTheTextThereAndEndsWithStop()
    {
        var (updates, inner) = await CutAsync(["Hello", " world, and", " more"], ["world"], ChatFinishReason.Length);

        AssertCut(updates, inner, "Hello ", pulled: 2);
    }

    [Fact]
    public async Task AStopSequenceSpanningTwoChunksIsFound()
    {
        var (updates, inner) = await CutAsync(["one tw", "o three", " four"], ["two"]);

        AssertCut(updates, inner, "one ", pulled: 2);
    }

    [Fact]
    public async Task AStopSequenceSpanningThreeChunksIsFound()
    {
        var (updates, inner) = await CutAsync(["alpha <", "/e", "nd> omega", " tail"], ["</end>"]);

        AssertCut(updates, inner, "alpha ", pulled: 3);
        // Only the possible start of the sequence was held: "alpha " went out with the first chunk.
        Assert.Equal("alpha ", updates[0].Text);
    }

    [Fact]
    public async Task AFalsePartialMatchIsReleasedAsSoonAsItCannotBeAStopSequence()
    {
        var (updates, _) = await CutAsync(["the sto", "ry of", " a st", "opwatch"], ["stop!"], ChatFinishReason.Length);

        Assert.Equal(["the ", "story of", " a ", "stopwatch"], updates.Where(u => u.Text.Length > 0).Select(u => u.Text));
        Assert.Equal("the story of a stopwatch", Text(updates));
        Assert.Equal(ChatFinishReason.Length, Finish(updates));
    }

    [Fact]
    public async Task OfSeveralSequencesTheEarliestInTheTextWins()
    {
        var (updates, _) = await CutAsync(["one two th", "ree four"], ["four", "three", "two th"]);

        Assert.Equal("one ", Text(updates));
        Assert.Equal(ChatFinishReason.Stop, Finish(updates));

        // A short sequence completed in a later chunk still wins over a long one that started after it.
        (updates, _) = await CutAsync(["ab", "cdef"], ["cdef", "bc"]);
        Assert.Equal("a", Text(updates));
    }

    [Fact]
    public async Task AStopSequenceAtTheVeryStartGivesNoTextAndStop()
    {
        var (updates, inner) = await CutAsync(["ST", "OP here", " and on"], ["STOP"]);

        AssertCut(updates, inner, "", pulled: 2);
    }

    [Fact]
    public async Task WhenNoSequenceMatchesTheUpdatesPassUnchanged()
    {
        string[] chunks = ["plain", " text", " that never", " stops"];
        var (updates, inner) = await CutAsync(chunks, ["xyz", "\n\n"], ChatFinishReason.Length);

        Assert.Equal([.. chunks, ""], updates.Select(u => u.Text));
        Assert.Equal(inner.Sent, updates);
        Assert.Equal(ChatFinishReason.Length, Finish(updates));
    }

    [Fact]
    public async Task WithoutStopSequencesTheProvidersStreamIsUntouched()
    {
        var (updates, inner) = await CutAsync(["a", "b"], stop: null, ChatFinishReason.Length);

        Assert.Equal(inner.Sent, updates);
        (updates, inner) = await CutAsync(["a", "b"], stop: [], ChatFinishReason.Length);
        Assert.Equal(inner.Sent, updates);
    }

    [Fact]
    public async Task UnicodeTextIsCutOnWholeCharacters()
    {
        var (updates, _) = await CutAsync(["héllo 中", "文😀 and more", " 😀"], ["中文😀"]);
        Assert.Equal("héllo ", Text(updates));
        Assert.Equal(ChatFinishReason.Stop, Finish(updates));

        // A chunk boundary inside a surrogate pair: the high half is held with the rest of the possible match.
        (updates, _) = await CutAsync(["x \uD83D", "\uDE00!", " y"], ["😀!"]);
        Assert.Equal("x ", Text(updates));

        // Combining marks and emoji that are not the sequence pass whole.
        (updates, _) = await CutAsync(["e\u0301 👩‍👩‍👧 ", "naïve", " end"], ["👩‍👩‍👦"]);
        Assert.Equal("e\u0301 👩‍👩‍👧 naïve end", Text(updates));
    }

    [Fact]
    public async Task AfterTheStopTheProviderIsNotReadAndIsDisposedBeforeTheLastTextIsPassedOn()
    {
        var inner = new ScriptedChatClient([.. Enumerable.Range(0, 1000).Select(i => $" w{i}")], ChatFinishReason.Length);
        using var client = new StopSequenceChatClient(inner);
        await using var updates = client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hi")],
            new ChatOptions { StopSequences = ["w3"] }, Ct).GetAsyncEnumerator(Ct);

        var texts = new List<string>();
        ChatResponseUpdate? last = null;
        while (await updates.MoveNextAsync())
        {
            last = updates.Current;
            texts.Add(last.Text);
            if (last.FinishReason is not null)
            {
                // Disposed already when the stop update is handed out, not when the consumer asks for more.
                Assert.True(inner.Disposed);
            }
        }

        Assert.Equal(" w0 w1 w2 ", string.Concat(texts));
        Assert.Equal(ChatFinishReason.Stop, last!.FinishReason);
        Assert.Equal(4, inner.Pulled);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public async Task AHeldTailIsReleasedWhenTheProviderEnds()
    {
        // Ends on a possible start of the sequence: released with the finish update.
        var (updates, _) = await CutAsync(["answer: ", "EN"], ["END"], ChatFinishReason.Length);
        Assert.Equal("answer: EN", Text(updates));
        Assert.Equal(ChatFinishReason.Length, Finish(updates));

        // No finish update at all: released as a last update of its own.
        (updates, _) = await CutAsync(["answer: ", "EN"], ["END"]);
        Assert.Equal("answer: EN", Text(updates));
    }

    [Fact]
    public async Task TheMaxOutputTokensthTextUpdateCarriesTheHeldTail()
    {
        // The worker reads at most MaxOutputTokens text updates, so the last of them must not hold anything back.
        var (updates, _) = await CutAsync(["a", "b", "c EN", "D"], ["END"], maxTokens: 3);

        Assert.Equal(["a", "b", "c EN"], updates.Where(u => u.Text.Length > 0).Take(3).Select(u => u.Text));
    }

    [Fact]
    public async Task OtherContentsOfTheCutUpdateAreKept()
    {
        var inner = new ScriptedChatClient([], finish: null)
        {
            Extra = [new ChatResponseUpdate(ChatRole.Assistant, [new TextContent("keep STOP drop"), new UsageContent(new UsageDetails { OutputTokenCount = 3 })])],
        };
        using var client = new StopSequenceChatClient(inner);

        var updates = await client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hi")], new ChatOptions { StopSequences = ["STOP"] }, Ct).ToListAsync(Ct);

        var update = Assert.Single(updates);
        Assert.Equal("keep ", update.Text);
        Assert.Single(update.Contents.OfType<UsageContent>());
        Assert.Null(update.RawRepresentation);
    }

    [Fact]
    public async Task AWholeResponseIsCutToo()
    {
        using var client = new StopSequenceChatClient(new ScriptedChatClient(["to be", " or not"], ChatFinishReason.Length));

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "hi")], new ChatOptions { StopSequences = [" or"] }, Ct);

        Assert.Equal("to be", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Fact]
    public void TheCutterHoldsOnlyWhatCouldStillBeAStopSequence()
    {
        var cutter = new StopSequenceCutter(["abc", "xy"]);

        Assert.Equal("12", cutter.Push("12ab"));
        Assert.Equal(2, cutter.HeldLength);
        Assert.Equal("ab", cutter.Push("x"));
        Assert.Equal(1, cutter.HeldLength);
        Assert.Equal("", cutter.Push("y tail"));
        Assert.True(cutter.Stopped);
        Assert.Equal("", cutter.Push("more"));
        Assert.Equal("", cutter.Flush());
    }

    /// <summary>Sends its chunks one update each, then a finish update; counts the updates read, records its disposal.</summary>
    private sealed class ScriptedChatClient(string[] chunks, ChatFinishReason? finish) : IChatClient
    {
        public List<ChatResponseUpdate> Sent { get; } = [];

        public IReadOnlyList<ChatResponseUpdate> Extra { get; init; } = [];

        public int Pulled { get; private set; }

        public bool Disposed { get; private set; }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            try
            {
                IEnumerable<ChatResponseUpdate> all = [.. chunks.Select(c => new ChatResponseUpdate(ChatRole.Assistant, c)), .. Extra];
                if (finish is { } reason)
                {
                    all = all.Append(new ChatResponseUpdate { FinishReason = reason });
                }

                foreach (var update in all)
                {
                    await Task.Yield();
                    cancellationToken.ThrowIfCancellationRequested();
                    Pulled++;
                    Sent.Add(update);
                    yield return update;
                }
            }
            finally
            {
                Disposed = true;
            }
        }

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
