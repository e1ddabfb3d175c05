using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Honours <see cref="ChatOptions.StopSequences"/> for any provider: the streamed text is cut at the first stop
/// sequence (also one spanning chunks, see <see cref="StopSequenceCutter"/>), nothing after it is passed on, the
/// response ends with <see cref="ChatFinishReason.Stop"/>, and the provider's stream is disposed at once so its
/// work stops. The options still carry the sequences, so an upstream that honours them stops early too; the cut
/// here makes every provider behave alike (the synthetic models ignore them, and upstreams differ: some ignore
/// <c>stop</c>, cap its count, or send the sequence itself).
/// </summary>
/// <remarks>
/// One text update out for at most one text update in, except the held tail's release at the end. A consumer that
/// reads at most <see cref="ChatOptions.MaxOutputTokens"/> text updates (the worker counts one a token) reads nothing
/// after that many, so the last it reads carries the held tail too: no text the provider sent is lost to the hold.
/// Without stop sequences the inner stream is returned as it is.
/// </remarks>
internal sealed class StopSequenceChatClient(IChatClient innerClient) : DelegatingChatClient(innerClient)
{
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        options?.StopSequences is { Count: > 0 } sequences
            ? CutAsync(base.GetStreamingResponseAsync(messages, options, cancellationToken), new StopSequenceCutter(sequences),
                options.MaxOutputTokens, cancellationToken)
            : base.GetStreamingResponseAsync(messages, options, cancellationToken);

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        options?.StopSequences is { Count: > 0 }
            ? await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken)
            : await base.GetResponseAsync(messages, options, cancellationToken);

    private static async IAsyncEnumerable<ChatResponseUpdate> CutAsync(IAsyncEnumerable<ChatResponseUpdate> updates,
        StopSequenceCutter cutter, int? maxTextUpdates, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var inner = updates.GetAsyncEnumerator(cancellationToken);
        var disposed = false;
        try
        {
            var textUpdates = 0;
            while (await inner.MoveNextAsync())
            {
                var update = inner.Current;
                var text = update.Text;
                var released = cutter.Push(text);
                if (cutter.Stopped)
                {
                    // Stop pulling before passing the last text on: the provider's work ends now, not after the write.
                    disposed = true;
                    await DisposeQuietlyAsync(inner);
                    yield return WithText(update, released, ChatFinishReason.Stop);
                    yield break;
                }

                var last = update.FinishReason is not null || (maxTextUpdates is { } max && textUpdates + 1 >= max && released.Length + cutter.HeldLength > 0);
                if (last)
                {
                    released += cutter.Flush();
                }

                if (released.Length > 0)
                {
                    textUpdates++;
                }

                yield return released == text ? update : WithText(update, released, update.FinishReason);
            }

            if (cutter.Flush() is { Length: > 0 } rest)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, rest);
            }
        }
        finally
        {
            if (!disposed)
            {
                await inner.DisposeAsync();
            }
        }
    }

    private static async ValueTask DisposeQuietlyAsync(IAsyncEnumerator<ChatResponseUpdate> inner)
    {
        try
        {
            await inner.DisposeAsync();
        }
        catch (Exception)
        {
            // The answer is complete: a provider that fails while its response is abandoned changes nothing of it.
        }
    }

    /// <summary>A copy of <paramref name="update"/> whose text is <paramref name="text"/>, its other contents kept in place.</summary>
    private static ChatResponseUpdate WithText(ChatResponseUpdate update, string text, ChatFinishReason? finish)
    {
        var contents = new List<AIContent>(update.Contents.Count + 1);
        var placed = false;
        foreach (var content in update.Contents)
        {
            if (content is TextContent)
            {
                if (!placed && text.Length > 0)
                {
                    contents.Add(new TextContent(text));
                }

                placed = true;
            }
            else
            {
                contents.Add(content);
            }
        }

        if (!placed && text.Length > 0)
        {
            contents.Add(new TextContent(text));
        }

        var copy = update.Clone();
        copy.Contents = contents;
        copy.FinishReason = finish;
        // The provider's own object holds the uncut text.
        copy.RawRepresentation = null;
        return copy;
    }
}
