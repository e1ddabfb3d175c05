using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using VixAspire.Contracts;
using VixAspire.Worker.Providers.Synthetic;
using ChatFinishReason = Microsoft.Extensions.AI.ChatFinishReason;

namespace VixAspire.Worker.Generation;

/// <summary>Why an answer stops before its provider finished: the end reason, and the error to report first, if any.</summary>
internal readonly record struct AnswerStop(string Reason, string? Error = null);

/// <summary>
/// Turns a provider's updates into the token stream's envelopes, in order: text as <c>token</c>, reasoning as
/// <c>reasoning</c>, tool calls as <c>tool_call</c> fragments, each split at <see cref="StreamingOptions.MaxTokenEventBytes"/>
/// and counted against the stream's byte cap; and it keeps what the end needs (usage, finish reason).
/// </summary>
/// <remarks>
/// Tool calls of an OpenAI-compatible upstream are forwarded fragment by fragment from the update's raw
/// <see cref="StreamingChatCompletionUpdate"/>, as they stream: Microsoft.Extensions.AI's adapter only yields each call
/// whole once the response is over, after parsing its arguments (text that is not JSON is lost) and dropping calls
/// without a name. Once fragments were forwarded, the adapter's complete calls repeat them and are skipped. Other
/// providers' complete <see cref="FunctionCallContent"/>s are written as fragments of their serialised arguments.
/// </remarks>
internal sealed class AnswerWriter(TokenStreamWriter writer, StreamingOptions limits)
{
    /// <summary>Entries a stream keeps besides the answer: start, error and end.</summary>
    private const int OwnEntries = 3;

    // Microsoft.Extensions.AI's default options indent; arguments go out on one line, as providers send them.
    private static readonly JsonTypeInfo<IDictionary<string, object?>> CompactArguments =
        (JsonTypeInfo<IDictionary<string, object?>>)new JsonSerializerOptions(AIJsonUtilities.DefaultOptions) { WriteIndented = false }
            .GetTypeInfo(typeof(IDictionary<string, object?>));

    /// <summary>Upstream tool-call index (per choice) → the call's position in the answer.</summary>
    private readonly Dictionary<int, int> _calls = [];
    private bool _streamedCalls;
    private int _callCount;
    private int _tokenIndex;
    private long _bytes;
    private long? _outputTokens;

    /// <summary>Text, reasoning and tool-call envelopes written.</summary>
    public int Events { get; private set; }

    /// <summary>Updates that carried text or reasoning, what <c>max_tokens</c> counts.</summary>
    public int CountedUpdates { get; private set; }

    public long? InputTokens { get; private set; }

    /// <summary>Output tokens as the provider reported them, else the envelopes written.</summary>
    public int OutputTokens => _outputTokens is { } reported ? (int)Math.Clamp(reported, 0, int.MaxValue) : Events;

    /// <summary>Set when the answer must end now, before the provider finished.</summary>
    public AnswerStop? Stop { get; private set; }

    public ChatFinishReason? Finish { get; private set; }

    /// <summary>The end reason when the provider finished: its own, or <c>tool_calls</c> when it called and gave none.</summary>
    public string EndReason =>
        Finish == ChatFinishReason.Length ? EndReasons.Length
        : Finish == ChatFinishReason.ToolCalls ? EndReasons.ToolCalls
        : Finish == ChatFinishReason.ContentFilter ? EndReasons.ContentFilter
        : Finish is null && _callCount > 0 ? EndReasons.ToolCalls
        : EndReasons.Stop;

    /// <summary>Writes what <paramref name="update"/> carries; true when it wrote an envelope.</summary>
    public async ValueTask<bool> WriteAsync(ChatResponseUpdate update, CancellationToken cancellationToken)
    {
        Finish = update.FinishReason ?? Finish;
        var before = Events;
        var counted = false;
        // By index: a foreach over the IList would box its enumerator, once per update.
        var contents = update.Contents;
        for (var i = 0; i < contents.Count; i++)
        {
            switch (contents[i])
            {
                case TextReasoningContent { Text.Length: > 0 } reasoning:
                    counted = true;
                    await WriteTextAsync(reasoning.Text, reasoning: true, cancellationToken);
                    break;
                case TextContent { Text.Length: > 0 } text:
                    counted = true;
                    await WriteTextAsync(text.Text, reasoning: false, cancellationToken);
                    break;
                case FunctionCallContent call when !_streamedCalls:
                    await WriteWholeCallAsync(call, cancellationToken);
                    break;
                case UsageContent usage:
                    InputTokens = usage.Details.InputTokenCount ?? InputTokens;
                    _outputTokens = usage.Details.OutputTokenCount ?? _outputTokens;
                    break;
            }

            if (Stop is not null)
            {
                return Events > before;
            }
        }

        if (update.RawRepresentation is StreamingChatCompletionUpdate { ToolCallUpdates.Count: > 0 } raw)
        {
            _streamedCalls = true;
            foreach (var fragment in raw.ToolCallUpdates)
            {
                await WriteFragmentAsync(fragment, cancellationToken);
                if (Stop is not null)
                {
                    break;
                }
            }
        }

        if (counted)
        {
            CountedUpdates++;
        }

        return Events > before;
    }

    private async ValueTask WriteFragmentAsync(StreamingChatToolCallUpdate fragment, CancellationToken cancellationToken)
    {
        var arguments = fragment.FunctionArgumentsUpdate is { } update ? update.ToString() : "";
        if (_calls.TryGetValue(fragment.Index, out var position))
        {
            if (arguments.Length > 0)
            {
                await WritePiecesAsync(position, id: null, name: null, arguments, cancellationToken);
            }

            return;
        }

        _calls[fragment.Index] = _callCount;
        await WriteCallAsync(_callCount, fragment.ToolCallId, fragment.FunctionName, arguments, cancellationToken);
    }

    /// <summary>
    /// A provider's complete call, streamed as an upstream would stream it: compact JSON arguments in fragments at their
    /// punctuation, so clients see the arguments build up as they do from OpenAI.
    /// </summary>
    private async ValueTask WriteWholeCallAsync(FunctionCallContent call, CancellationToken cancellationToken)
    {
        var position = _callCount;
        var fragments = call.Arguments is null ? ["{}"] : SyntheticReply.JsonFragments(JsonSerializer.Serialize(call.Arguments, CompactArguments));
        await WriteCallAsync(position, call.CallId, call.Name, fragments[0], cancellationToken);
        foreach (var fragment in fragments.Skip(1))
        {
            if (Stop is not null)
            {
                return;
            }

            await WritePiecesAsync(position, id: null, name: null, fragment, cancellationToken);
        }
    }

    /// <summary>A call's first fragment, which must name the function: a client cannot run a call it cannot name.</summary>
    private async ValueTask WriteCallAsync(int position, string? id, string? name, string arguments, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(name))
        {
            Stop = new AnswerStop(EndReasons.Error, "The model provider sent a tool call without a name.");
            return;
        }

        _callCount++;
        // Clients send the id back with the call's result; a provider that gave none gets one.
        id = string.IsNullOrEmpty(id) ? "call_" + Guid.NewGuid().ToString("N")[..24] : id;
        await WritePiecesAsync(position, id, name, arguments, cancellationToken);
    }

    /// <summary>Arguments in pieces of at most the event size; id and name go with the first piece.</summary>
    private async ValueTask WritePiecesAsync(int position, string? id, string? name, string arguments, CancellationToken cancellationToken)
    {
        var head = (id is null ? 0 : TokenSplitter.Utf8Length(id)) + (name is null ? 0 : TokenSplitter.Utf8Length(name));
        var rest = arguments.AsMemory();
        do
        {
            var take = rest.IsEmpty ? 0 : TokenSplitter.FitPrefix(rest.Span, limits.MaxTokenEventBytes);
            var piece = rest[..take];
            if (!Admit(head + TokenSplitter.Utf8Length(piece.Span)))
            {
                return;
            }

            await writer.AppendToolCallAsync(position, id, name, take == arguments.Length ? arguments : piece.ToString(), cancellationToken);
            (id, name, head) = (null, null, 0);
            rest = rest[take..];
        }
        while (!rest.IsEmpty);
    }

    private async ValueTask WriteTextAsync(string text, bool reasoning, CancellationToken cancellationToken)
    {
        var rest = text.AsMemory();
        while (rest.Length > 0)
        {
            var take = TokenSplitter.FitPrefix(rest.Span, limits.MaxTokenEventBytes);
            var piece = rest[..take];
            if (!Admit(TokenSplitter.Utf8Length(piece.Span)))
            {
                return;
            }

            var pieceText = take == text.Length ? text : piece.ToString();
            if (reasoning)
            {
                await writer.AppendReasoningAsync(pieceText, cancellationToken);
            }
            else
            {
                await writer.AppendTokenAsync(pieceText, _tokenIndex++, cancellationToken);
            }

            rest = rest[take..];
        }
    }

    /// <summary>
    /// Counts an envelope of <paramref name="bytes"/> against the byte cap and the stream's entry cap (its <c>MAXLEN</c>,
    /// which would otherwise trim the start of an answer of many tiny tool-call fragments); false when it does not fit.
    /// </summary>
    private bool Admit(int bytes)
    {
        _bytes += bytes;
        if (_bytes > limits.MaxStreamBytes || Events + OwnEntries >= limits.MaxStreamEntries)
        {
            Stop = new AnswerStop(EndReasons.MaxBytes);
            return false;
        }

        Events++;
        return true;
    }
}
