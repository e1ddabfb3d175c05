using Microsoft.Extensions.AI;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Sits just before the OpenAI adapter. It gives the request's messages their OpenAI-typed copies (<see cref="OpenAiRequestMapping"/>),
/// and takes the request's <see cref="ToolDeclaration"/>s out of the options: their
/// raw options (<see cref="OpenAiRequestMapping"/>) carry the same tools as the client declared them. The adapter would
/// add its own rendering of each, with the schema rewritten, or throw on a schema it cannot read.
/// </summary>
internal sealed class DeclaredToolsChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(WithOpenAiCopies(messages), WithoutDeclarations(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(WithOpenAiCopies(messages), WithoutDeclarations(options), cancellationToken);

    /// <summary>Gives each of the request's messages its OpenAI-typed copy, which the adapter sends as it is.</summary>
    internal static IEnumerable<ChatMessage> WithOpenAiCopies(IEnumerable<ChatMessage> messages)
    {
        foreach (var message in messages)
        {
            if (message is MappedChatMessage { RawRepresentation: null } mapped)
            {
                mapped.RawRepresentation = OpenAiRequestMapping.ToOpenAiMessage(mapped.Turn, mapped.Contents as IReadOnlyList<AIContent> ?? [.. mapped.Contents]);
            }
        }

        return messages;
    }

    private static ChatOptions? WithoutDeclarations(ChatOptions? options)
    {
        if (options is not { RawRepresentationFactory: not null, Tools: { Count: > 0 } tools } || !tools.Any(t => t is ToolDeclaration))
        {
            return options;
        }

        var trimmed = options.Clone();
        trimmed.Tools = tools.Any(t => t is not ToolDeclaration) ? [.. tools.Where(t => t is not ToolDeclaration)] : null;
        return trimmed;
    }
}
