using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// OpenAI's <c>messages</c>, checked as OpenAI checks them and carried whole: text or content parts (text, images by
/// http(s) URL or <c>data:image/...;base64,</c>), names, an assistant's tool calls (arguments must be JSON), a tool's
/// result (its <c>tool_call_id</c> must answer an earlier call). A part or field VixAspire does not carry is refused by
/// name. Each message reports at most its first mistake.
/// </summary>
internal static partial class ChatMessages
{
    public const string System = "system";
    public const string Developer = "developer";
    public const string User = "user";
    public const string Assistant = "assistant";
    public const string Tool = "tool";

    private static readonly string[] Roles = [System, Developer, User, Assistant, Tool];

    private static readonly HashSet<string> ImageDetails = new(StringComparer.Ordinal) { "auto", "low", "high" };

    public static List<ChatTurn>? Read(List<ChatTurnBody?> bodies, RequestErrors errors)
    {
        if (bodies.Count == 0)
        {
            errors.Add("messages", "'messages' must hold at least one message.");
            return null;
        }

        var turns = new List<ChatTurn>(bodies.Count);
        var callIds = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < bodies.Count; i++)
        {
            var (turn, param, error) = ReadOne(bodies[i], $"messages[{i}]", callIds);
            if (error is not null)
            {
                errors.Add(param!, error);
            }
            else
            {
                turns.Add(turn!);
                foreach (var call in turn!.ToolCalls ?? [])
                {
                    callIds.Add(call.Id);
                }
            }
        }

        return turns;
    }

    private static (ChatTurn? Turn, string? Param, string? Error) ReadOne(ChatTurnBody? body, string at, HashSet<string> callIds)
    {
        if (body?.Role is not { } role || !Roles.Contains(role, StringComparer.Ordinal))
        {
            return Fail($"{at}.role", $"{at}.role must be one of: {string.Join(", ", Roles)}.");
        }

        if (Refused(body, at) is { } refused)
        {
            return Fail(refused.Param, refused.Error);
        }

        if (body.ToolCalls is not null && role != Assistant)
        {
            return Fail($"{at}.tool_calls", $"{at}.tool_calls is allowed only on assistant messages.");
        }

        if (body.ToolCallId is not null && role != Tool)
        {
            return Fail($"{at}.tool_call_id", $"{at}.tool_call_id is allowed only on tool messages.");
        }

        if (body.ReasoningContent is not null && role != Assistant)
        {
            return Fail($"{at}.reasoning_content", $"{at}.reasoning_content is allowed only on assistant messages.");
        }

        if (body.Name is not null && role == Tool)
        {
            return Fail($"{at}.name", $"{at}.name is not allowed on tool messages.");
        }

        List<ToolCall>? calls = null;
        if (body.ToolCalls is { } bodies)
        {
            var (read, param, error) = ReadToolCalls(bodies, at);
            if (error is not null)
            {
                return Fail(param!, error);
            }

            calls = read;
        }

        if (role == Tool && (string.IsNullOrEmpty(body.ToolCallId) || !callIds.Contains(body.ToolCallId)))
        {
            return Fail($"{at}.tool_call_id", string.IsNullOrEmpty(body.ToolCallId)
                ? $"{at}.tool_call_id is required on tool messages."
                : $"{at}.tool_call_id '{Streaming.RequestFault.Clip(body.ToolCallId)}' answers no tool call of an earlier assistant message.");
        }

        string? text = null;
        List<ContentPart>? parts = null;
        switch (body.Content?.Json)
        {
            case null or { ValueKind: JsonValueKind.Null } when role == Assistant && calls is not null:
                break;
            case null or { ValueKind: JsonValueKind.Null }:
                return Fail($"{at}.content", role == Assistant
                    ? $"{at}.content must be a string or an array of text parts, unless the message has tool_calls."
                    : $"{at}.content must be a string or an array of content parts.");
            case { ValueKind: JsonValueKind.String } content:
                if (!TryGetString(content, out text))
                {
                    return Fail($"{at}.content", $"{at}.content is not valid text (UTF-8, no lone surrogate).");
                }

                break;
            case { ValueKind: JsonValueKind.Array } array:
                var (readParts, param, error) = ReadParts(array, $"{at}.content", imagesAllowed: role == User);
                if (error is not null)
                {
                    return Fail(param!, error);
                }

                parts = readParts;
                break;
            default:
                return Fail($"{at}.content", $"{at}.content must be a string or an array of content parts.");
        }

        return (new ChatTurn(role, text) { Parts = parts, Name = body.Name, ToolCalls = calls, ToolCallId = body.ToolCallId, ReasoningContent = body.ReasoningContent }, null, null);
    }

    private static (string Param, string Error)? Refused(ChatTurnBody body, string at) =>
        IsSet(body.Refusal) ? ($"{at}.refusal", $"{at}.refusal is not supported by VixAspire; send the refusal as content.")
        : IsSet(body.Audio) ? ($"{at}.audio", $"{at}.audio is not supported by VixAspire.")
        : IsSet(body.FunctionCall) ? ($"{at}.function_call", $"{at}.function_call is not supported by VixAspire; use tool_calls.")
        : body.Annotations is { ValueKind: not JsonValueKind.Null } annotations && (annotations.ValueKind != JsonValueKind.Array || annotations.GetArrayLength() > 0)
            ? ($"{at}.annotations", $"{at}.annotations is not supported by VixAspire; only an empty list is accepted.")
        : null;

    private static (List<ToolCall>? Calls, string? Param, string? Error) ReadToolCalls(List<ToolCallBody?> bodies, string at)
    {
        if (bodies.Count == 0)
        {
            return (null, $"{at}.tool_calls", $"{at}.tool_calls must hold at least one call when present.");
        }

        var calls = new List<ToolCall>(bodies.Count);
        for (var j = 0; j < bodies.Count; j++)
        {
            var call = bodies[j];
            var here = $"{at}.tool_calls[{j}]";
            var (param, error) = call switch
            {
                null => (here, $"{here} must be an object."),
                { Custom: { ValueKind: not JsonValueKind.Null } } or { Type: "custom" } => ($"{here}.type", $"{here}: custom tool calls are not supported by VixAspire."),
                { Type: not ToolDefinitionType } => ($"{here}.type", $"{here}.type must be 'function'."),
                { Id: null or "" } => ($"{here}.id", $"{here}.id is required."),
                { Function: null } => ($"{here}.function", $"{here}.function is required."),
                { Function.Name: null or "" } => ($"{here}.function.name", $"{here}.function.name is required."),
                { Function.Arguments: null } => ($"{here}.function.arguments", $"{here}.function.arguments is required (a JSON string)."),
                _ when !IsJson(call.Function.Arguments) => ($"{here}.function.arguments", $"{here}.function.arguments must be valid JSON."),
                _ => (null, null),
            };
            if (error is not null)
            {
                return (null, param, error);
            }

            calls.Add(new ToolCall(call!.Id!, call.Function!.Name!, call.Function.Arguments!));
        }

        return (calls, null, null);
    }

    private static (List<ContentPart>? Parts, string? Param, string? Error) ReadParts(JsonElement array, string at, bool imagesAllowed)
    {
        if (array.GetArrayLength() == 0)
        {
            return (null, at, $"{at} must hold at least one content part.");
        }

        var parts = new List<ContentPart>(array.GetArrayLength());
        var j = 0;
        foreach (var part in array.EnumerateArray())
        {
            var here = $"{at}[{j++}]";
            var (read, param, error) = ReadPart(part, here, imagesAllowed);
            if (error is not null)
            {
                return (null, param, error);
            }

            parts.Add(read!);
        }

        return (parts, null, null);
    }

    private static (ContentPart? Part, string? Param, string? Error) ReadPart(JsonElement part, string at, bool imagesAllowed)
    {
        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var typeValue) || typeValue.ValueKind != JsonValueKind.String)
        {
            return (null, $"{at}.type", $"{at} must be an object with a 'type'.");
        }

        if (!TryGetString(typeValue, out var type))
        {
            return (null, $"{at}.type", $"{at}.type is not valid text.");
        }

        var allowed = type switch
        {
            ContentPart.TextType => TextPartFields,
            ContentPart.ImageType when imagesAllowed => ImagePartFields,
            ContentPart.ImageType => null,
            _ => null,
        };
        if (allowed is null)
        {
            return (null, $"{at}.type", type == ContentPart.ImageType
                ? $"{at}.type 'image_url' is allowed only in user messages."
                : $"{at}.type '{Streaming.RequestFault.Clip(type!)}' is not supported by VixAspire (only 'text' and, in user messages, 'image_url').");
        }

        foreach (var field in part.EnumerateObject())
        {
            if (!allowed.Contains(field.Name))
            {
                return (null, $"{at}.{field.Name}", $"Unrecognized request argument supplied: {at}.{Streaming.RequestFault.Clip(field.Name)}");
            }
        }

        return type == ContentPart.TextType ? ReadTextPart(part, at) : ReadImagePart(part, at);
    }

    private static readonly HashSet<string> TextPartFields = new(StringComparer.Ordinal) { "type", "text" };
    private static readonly HashSet<string> ImagePartFields = new(StringComparer.Ordinal) { "type", "image_url" };
    private static readonly HashSet<string> ImageUrlFields = new(StringComparer.Ordinal) { "url", "detail" };

    private static (ContentPart?, string?, string?) ReadTextPart(JsonElement part, string at) =>
        part.TryGetProperty("text"u8, out var value) && value.ValueKind == JsonValueKind.String && TryGetString(value, out var text)
            ? (new ContentPart(ContentPart.TextType, text), null, null)
            : (null, $"{at}.text", $"{at}.text must be a string.");

    private static (ContentPart?, string?, string?) ReadImagePart(JsonElement part, string at)
    {
        var here = $"{at}.image_url";
        if (!part.TryGetProperty("image_url"u8, out var image) || image.ValueKind != JsonValueKind.Object)
        {
            return (null, here, $"{here} must be an object with a 'url'.");
        }

        foreach (var field in image.EnumerateObject())
        {
            if (!ImageUrlFields.Contains(field.Name))
            {
                return (null, $"{here}.{field.Name}", $"Unrecognized request argument supplied: {here}.{Streaming.RequestFault.Clip(field.Name)}");
            }
        }

        if (!image.TryGetProperty("url"u8, out var urlValue) || urlValue.ValueKind != JsonValueKind.String || !TryGetString(urlValue, out var url) || !IsImageUrl(url!))
        {
            return (null, $"{here}.url", $"{here}.url must be an http(s) URL or a data:image/...;base64, URI.");
        }

        string? detail = null;
        if (image.TryGetProperty("detail"u8, out var detailValue) && detailValue.ValueKind != JsonValueKind.Null
            && (detailValue.ValueKind != JsonValueKind.String || !TryGetString(detailValue, out detail) || !ImageDetails.Contains(detail!)))
        {
            return (null, $"{here}.detail", $"{here}.detail must be one of: auto, low, high.");
        }

        return (new ContentPart(ContentPart.ImageType, ImageUrl: url, Detail: detail), null, null);
    }

    private static bool IsImageUrl(string url)
    {
        if (DataImage().Match(url) is { Success: true } data)
        {
            var payload = url.AsSpan(data.Length);
            return payload.Length > 0 && Base64.IsValid(payload);
        }

        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
    }

    [GeneratedRegex("^data:image/[A-Za-z0-9.+-]+;base64,")]
    private static partial Regex DataImage();

    /// <summary>
    /// Whether the text is one JSON value, read to its end with the reader's default depth (64), so hostile
    /// arguments cost one pass.
    /// </summary>
    internal static bool IsJson(string text)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(text));
        var any = false;
        try
        {
            while (reader.Read())
            {
                any = true;
            }

            return any;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    // Content is kept as raw JSON until here, so its strings are first decoded now: bytes that are not UTF-8, or an
    // escaped lone surrogate, are the client's mistake.
    private static bool TryGetString(JsonElement value, out string? text)
    {
        try
        {
            text = value.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            text = null;
            return false;
        }
    }

    internal static bool IsSet(JsonElement? value) => value is { ValueKind: not JsonValueKind.Null };

    private static (ChatTurn?, string?, string?) Fail(string param, string error) => (null, param, error);

    /// <summary>The only tool type VixAspire carries, in definitions and in calls.</summary>
    internal const string ToolDefinitionType = "function";
}
