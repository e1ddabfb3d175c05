using Microsoft.Extensions.AI;
using OpenAI.Chat;

namespace VixAspire.Worker.Providers;

/// <summary>What counts as the start of an answer: after it, a provider's failure is final (nothing is retried).</summary>
internal static class AnswerContent
{
    /// <summary>
    /// True when <paramref name="update"/> carries text, reasoning or a tool call, including an OpenAI-compatible
    /// upstream's tool-call fragments, which its adapter leaves in the raw update until the response is over.
    /// </summary>
    public static bool Carries(ChatResponseUpdate update)
    {
        if (update.RawRepresentation is StreamingChatCompletionUpdate { ToolCallUpdates.Count: > 0 })
        {
            return true;
        }

        foreach (var content in update.Contents)
        {
            if (content is TextContent { Text.Length: > 0 } or TextReasoningContent { Text.Length: > 0 } or FunctionCallContent)
            {
                return true;
            }
        }

        return false;
    }
}
