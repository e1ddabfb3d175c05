using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace VixAspire.TestSupport;

/// <summary>One call to a <see cref="ScriptedChatClient"/>: its number (the first is 1), what it was asked, and with which options.</summary>
public sealed record ScriptedCall(int Number, IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)
{
    public string Prompt => Messages[^1].Text;
}

/// <summary>What a <see cref="ScriptedChatClient"/> streams for one call.</summary>
public delegate IAsyncEnumerable<ChatResponseUpdate> ChatScript(ScriptedCall call, CancellationToken cancellationToken);

/// <summary>
/// A stand-in upstream that records every call and streams what its script says. The script is read at each
/// call, so a test can change what the next calls do; it runs when the stream is first read, as a provider's would.
/// </summary>
public sealed class ScriptedChatClient(ChatScript? script = null) : IChatClient
{
    private readonly List<string> _prompts = [];

    /// <summary>One token, <c>ok</c>.</summary>
    public static readonly ChatScript Answer = After(_ => Task.CompletedTask);

    /// <summary>What the calls from now on stream.</summary>
    public ChatScript Next { get; set; } = script ?? Answer;

    /// <summary>The prompt (the last message) of every call so far, in order.</summary>
    public IReadOnlyList<string> Prompts
    {
        get
        {
            lock (_prompts)
            {
                return [.. _prompts];
            }
        }
    }

    public int Calls
    {
        get
        {
            lock (_prompts)
            {
                return _prompts.Count;
            }
        }
    }

    /// <summary>Runs <paramref name="first"/> (a failure, a hang), then answers as <see cref="Answer"/> does.</summary>
    public static ChatScript After(Func<CancellationToken, Task> first) => (_, cancellationToken) => AfterAsync(first, cancellationToken);

    /// <summary>Fails as an upstream answering <paramref name="status"/> does.</summary>
    public static ChatScript Status(HttpStatusCode status) =>
        After(_ => Task.FromException(new HttpRequestException("scripted failure", null, status)));

    /// <summary>
    /// The call's <see cref="ChatOptions.MaxOutputTokens"/> tokens <c> t0</c>, <c> t1</c>, …, each after
    /// <paramref name="before"/> (given the token's index) when there is one: a delay, a stall.
    /// </summary>
    public static ChatScript Tokens(Func<int, CancellationToken, Task>? before = null) =>
        (call, cancellationToken) => TokensAsync(call, before, cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IReadOnlyList<ChatMessage> asked = [.. messages];
        int number;
        lock (_prompts)
        {
            _prompts.Add(asked[^1].Text);
            number = _prompts.Count;
        }

        await foreach (var update in Next(new ScriptedCall(number, asked, options), cancellationToken))
        {
            yield return update;
        }
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> AfterAsync(Func<CancellationToken, Task> first, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await first(cancellationToken);
        yield return new ChatResponseUpdate(ChatRole.Assistant, "ok");
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> TokensAsync(ScriptedCall call, Func<int, CancellationToken, Task>? before,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (var i = 0; i < call.Options!.MaxOutputTokens; i++)
        {
            if (before is not null)
            {
                await before(i, cancellationToken);
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, $" t{i}");
        }
    }
}
