using Microsoft.Extensions.AI;

namespace VixAspire.Worker.Providers;

/// <summary>
/// Sits just before the OpenAI adapter and takes the request's <see cref="ToolDeclaration"/>s out of the options: their
/// raw options (<see cref="OpenAiRequestMapping"/>) carry the same tools as the client declared them. The adapter would
/// add its own rendering of each, with the schema rewritten, or throw on a schema it cannot read.
/// </summary>
internal sealed class DeclaredToolsChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(messages, WithoutDeclarations(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(messages, WithoutDeclarations(options), cancellationToken);

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
