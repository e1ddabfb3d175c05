using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using VixAspire.Contracts;
using ChatMessage = OpenAI.Chat.ChatMessage;
using ChatResponseFormat = OpenAI.Chat.ChatResponseFormat;

namespace VixAspire.Worker.Providers;

/// <summary>
/// The request in the OpenAI client's own types, for the Microsoft.Extensions.AI OpenAI adapter to send as they are
/// (a message's <c>RawRepresentation</c>, the options' <c>RawRepresentationFactory</c>). Its own mapping would strip
/// characters from names, re-indent tool arguments, rewrite tool and response schemas (adding
/// <c>additionalProperties: false</c>, <c>required</c>, moving <c>minLength</c> into descriptions, or throwing on a schema
/// it cannot read), add <c>tool_choice: "auto"</c>, and has nowhere to put <c>user</c>, <c>metadata</c> or an effort like
/// <c>minimal</c>.
/// </summary>
#pragma warning disable OPENAI001, SCME0001 // Developer messages, reasoning effort and JSON patches of a message are marked experimental.
internal static class OpenAiRequestMapping
{
    /// <summary>The turn as OpenAI's wire message; null for a role OpenAI does not have (the API refuses it).</summary>
    public static ChatMessage? ToOpenAiMessage(ChatTurn turn, IReadOnlyList<AIContent> contents)
    {
        switch (turn.Role)
        {
            case "system":
                return new SystemChatMessage(Parts(contents)) { ParticipantName = turn.Name };
            case "developer":
                return new DeveloperChatMessage(Parts(contents)) { ParticipantName = turn.Name };
            case "user":
                return new UserChatMessage(Parts(contents)) { ParticipantName = turn.Name };
            case "tool":
                return turn.Parts is null
                    ? new ToolChatMessage(turn.ToolCallId ?? "", turn.Content ?? "")
                    : new ToolChatMessage(turn.ToolCallId ?? "", turn.Parts.Where(p => p.Type == ContentPart.TextType).Select(p => ChatMessageContentPart.CreateTextPart(p.Text ?? "")));
            case "assistant":
                return Assistant(turn, contents);
            default:
                return null;
        }
    }

    /// <summary>
    /// What the adapter starts its options from, or null when the request has nothing its own mapping loses. A fresh
    /// object per call: the adapter fills it in, and each attempt (retries, fallbacks) calls again.
    /// </summary>
    public static Func<IChatClient, object?>? OptionsFactory(InferenceRequest request)
    {
        if (request is { Tools: null, ToolChoice: null, ParallelToolCalls: null, ResponseFormat: null, ReasoningEffort: null, User: null, Metadata: null })
        {
            return null;
        }

        return _ => ToOptions(request);
    }

    private static ChatCompletionOptions ToOptions(InferenceRequest request)
    {
        var options = new ChatCompletionOptions
        {
            ToolChoice = ToToolChoice(request.ToolChoice),
            AllowParallelToolCalls = request.ParallelToolCalls,
            ResponseFormat = ToResponseFormat(request.ResponseFormat),
            EndUserId = request.User,
            ReasoningEffortLevel = request.ReasoningEffort is { } effort ? new ChatReasoningEffortLevel(effort) : (ChatReasoningEffortLevel?)null,
        };

        if (request.Metadata is { } metadata)
        {
            foreach (var (key, value) in metadata)
            {
                options.Metadata[key] = value;
            }
        }

        foreach (var tool in request.Tools ?? [])
        {
            // The schema as the client wrote it: the adapter's rendering (kept from it by DeclaredToolsChatClient) would rewrite it.
            options.Tools.Add(ChatTool.CreateFunctionTool(tool.Name, tool.Description, tool.Parameters is { } parameters ? Json(parameters) : null, tool.Strict));
        }

        return options;
    }

    /// <summary>
    /// The parts from the contents already parsed, in order. A lone text part goes out as a string, as OpenAI reads it either
    /// way; a data URI's bytes go out re-encoded, the same base64 for the same bytes.
    /// </summary>
    private static List<ChatMessageContentPart> Parts(IReadOnlyList<AIContent> contents)
    {
        var parts = new List<ChatMessageContentPart>(contents.Count);
        foreach (var content in contents)
        {
            var level = content.AdditionalProperties?.TryGetValue(ChatRequestMapping.DetailKey, out var detail) is true && detail is string name
                ? new ChatImageDetailLevel(name)
                : (ChatImageDetailLevel?)null;
            switch (content)
            {
                case TextContent text:
                    parts.Add(ChatMessageContentPart.CreateTextPart(text.Text));
                    break;
                case DataContent data:
                    parts.Add(ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(data.Data), data.MediaType, level));
                    break;
                case UriContent uri:
                    parts.Add(ChatMessageContentPart.CreateImagePart(uri.Uri, level));
                    break;
            }
        }

        return parts;
    }

    private static AssistantChatMessage Assistant(ChatTurn turn, IReadOnlyList<AIContent> contents)
    {
        // The arguments exactly as the client sent them, valid JSON or not.
        var calls = (turn.ToolCalls ?? []).Select(c => ChatToolCall.CreateFunctionToolCall(c.Id, c.Name, BinaryData.FromString(c.Arguments))).ToList();
        var parts = Parts(contents);
        var hasText = parts.Count > 0 || calls.Count == 0;
        var message = hasText ? new AssistantChatMessage(parts) : new AssistantChatMessage(calls);
        if (hasText)
        {
            foreach (var call in calls)
            {
                message.ToolCalls.Add(call);
            }
        }

        message.ParticipantName = turn.Name;
        if (turn.ReasoningContent is { } reasoning)
        {
            // Not a field of OpenAI's types: servers that stream reasoning_content (vLLM, DeepSeek, llama.cpp) take it back.
            message.Patch.Set("$.reasoning_content"u8, reasoning);
        }

        return message;
    }

    private static ChatToolChoice? ToToolChoice(ToolChoice? choice) => choice?.Mode switch
    {
        ToolChoice.None => ChatToolChoice.CreateNoneChoice(),
        ToolChoice.Auto => ChatToolChoice.CreateAutoChoice(),
        ToolChoice.Required => ChatToolChoice.CreateRequiredChoice(),
        ToolChoice.Named when choice.Function is { } name => ChatToolChoice.CreateFunctionChoice(name),
        _ => null,
    };

    private static ChatResponseFormat? ToResponseFormat(ResponseFormat? format) => format?.Type switch
    {
        ResponseFormat.TextType => ChatResponseFormat.CreateTextFormat(),
        ResponseFormat.JsonObjectType => ChatResponseFormat.CreateJsonObjectFormat(),
        ResponseFormat.JsonSchemaType => ChatResponseFormat.CreateJsonSchemaFormat(format.Name ?? "", format.Schema is { } schema ? Json(schema) : null,
            format.Description, format.Strict),
        _ => null,
    };

    private static BinaryData Json(JsonElement element) => BinaryData.FromString(element.GetRawText());
}
