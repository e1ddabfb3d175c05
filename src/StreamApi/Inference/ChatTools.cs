using System.Text.Json;
using System.Text.RegularExpressions;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// <c>tools</c>, <c>tool_choice</c>, <c>parallel_tool_calls</c> and <c>response_format</c>, checked with OpenAI's rules:
/// function tools only, names <c>^[a-zA-Z0-9_-]{1,64}$</c>, at most <see cref="MaxTools"/>, a named choice naming a
/// declared tool, schemas that are JSON objects nested at most <see cref="MaxSchemaDepth"/> levels.
/// </summary>
internal static partial class ChatTools
{
    /// <summary>OpenAI's limit.</summary>
    public const int MaxTools = 128;

    /// <summary>Deepest schema taken (objects and arrays counted): far past any real one, and a bound on the work a schema costs providers.</summary>
    public const int MaxSchemaDepth = 64;

    public static IReadOnlyList<ToolDefinition>? ReadTools(List<ToolBody?>? bodies, RequestErrors errors)
    {
        if (bodies is null || bodies.Count == 0)
        {
            return null;
        }

        if (bodies.Count > MaxTools)
        {
            errors.Add("tools", $"'tools' may hold at most {MaxTools} tools; it holds {bodies.Count}.");
            return null;
        }

        var tools = new List<ToolDefinition>(bodies.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < bodies.Count; i++)
        {
            var tool = bodies[i];
            var at = $"tools[{i}]";
            var (param, error) = tool switch
            {
                null => (at, $"{at} must be an object."),
                { Custom: { ValueKind: not JsonValueKind.Null } } or { Type: "custom" } => ($"{at}.type", $"{at}: custom tools are not supported by VixAspire; use function tools."),
                { Type: not ChatMessages.ToolDefinitionType } => ($"{at}.type", $"{at}.type must be 'function'."),
                { Function: null } => ($"{at}.function", $"{at}.function is required."),
                { Function.Name: null } => ($"{at}.function.name", $"{at}.function.name is required."),
                _ when !ToolName().IsMatch(tool.Function.Name) => ($"{at}.function.name", $"{at}.function.name must match ^[a-zA-Z0-9_-]{{1,64}}$."),
                _ when !names.Add(tool.Function.Name) => ($"{at}.function.name", $"{at}.function.name '{tool.Function.Name}' is declared twice."),
                _ => SchemaError(tool.Function.Parameters, $"{at}.function.parameters"),
            };
            if (error is not null)
            {
                errors.Add(param!, error);
                continue;
            }

            var function = tool!.Function!;
            tools.Add(new ToolDefinition(function.Name!, function.Description, Schema(function.Parameters), function.Strict));
        }

        return tools;
    }

    public static ToolChoice? ReadToolChoice(JsonElement? value, IReadOnlyList<ToolDefinition>? tools, RequestErrors errors)
    {
        const string Field = "tool_choice";
        ToolChoice? choice;
        switch (value)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return null;
            case { ValueKind: JsonValueKind.String } mode when mode.ValueEquals(ToolChoice.None) || mode.ValueEquals(ToolChoice.Auto) || mode.ValueEquals(ToolChoice.Required):
                choice = new ToolChoice(mode.GetString()!);
                break;
            case { ValueKind: JsonValueKind.Object } named:
                var (param, error, function) = ReadNamedChoice(named);
                if (error is not null)
                {
                    errors.Add(param!, error);
                    return null;
                }

                choice = new ToolChoice(ToolChoice.Named, function);
                break;
            default:
                errors.Add(Field, "'tool_choice' must be 'none', 'auto', 'required' or {\"type\":\"function\",\"function\":{\"name\":...}}.");
                return null;
        }

        if (choice.Mode is ToolChoice.Required or ToolChoice.Named && tools is null)
        {
            errors.Add(Field, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
            return null;
        }

        if (choice.Mode == ToolChoice.Named && !tools!.Any(t => t.Name == choice.Function))
        {
            errors.Add("tool_choice.function.name", $"tool_choice names '{RequestFault.Clip(choice.Function!)}', which is not in 'tools'.");
            return null;
        }

        return choice;
    }

    private static (string? Param, string? Error, string? Function) ReadNamedChoice(JsonElement named)
    {
        foreach (var field in named.EnumerateObject())
        {
            if (field.Name is not ("type" or "function"))
            {
                return ($"tool_choice.{field.Name}", $"Unrecognized request argument supplied: tool_choice.{RequestFault.Clip(field.Name)}", null);
            }
        }

        if (!named.TryGetProperty("type"u8, out var type) || !type.ValueEquals(ChatMessages.ToolDefinitionType))
        {
            return ("tool_choice.type", "tool_choice.type must be 'function' (allowed_tools and custom choices are not supported by VixAspire).", null);
        }

        if (!named.TryGetProperty("function"u8, out var function) || function.ValueKind != JsonValueKind.Object
            || !function.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String
            || function.EnumerateObject().Any(f => f.Name != "name"))
        {
            return ("tool_choice.function", "tool_choice.function must be {\"name\": \"...\"}.", null);
        }

        try
        {
            return (null, null, name.GetString());
        }
        catch (InvalidOperationException)
        {
            return ("tool_choice.function.name", "tool_choice.function.name is not valid text.", null);
        }
    }

    public static bool? ReadParallelToolCalls(bool? value, IReadOnlyList<ToolDefinition>? tools, RequestErrors errors)
    {
        if (value is not null && tools is null)
        {
            errors.Add("parallel_tool_calls", "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.");
            return null;
        }

        return value;
    }

    public static ResponseFormat? ReadResponseFormat(ResponseFormatBody? body, RequestErrors errors)
    {
        const string Field = "response_format";
        switch (body?.Type)
        {
            case null when body is null:
                return null;
            case ResponseFormat.TextType or ResponseFormat.JsonObjectType when body.JsonSchema is not null:
                errors.Add($"{Field}.json_schema", $"'{Field}.json_schema' is allowed only with type 'json_schema'.");
                return null;
            case ResponseFormat.TextType or ResponseFormat.JsonObjectType:
                return new ResponseFormat(body.Type);
            case ResponseFormat.JsonSchemaType:
                var schema = body.JsonSchema;
                var (param, error) = schema switch
                {
                    null => ($"{Field}.json_schema", $"'{Field}.json_schema' is required with type 'json_schema'."),
                    { Name: null } => ($"{Field}.json_schema.name", $"'{Field}.json_schema.name' is required."),
                    _ when !ToolName().IsMatch(schema.Name) => ($"{Field}.json_schema.name", $"'{Field}.json_schema.name' must match ^[a-zA-Z0-9_-]{{1,64}}$."),
                    _ => SchemaError(schema.Schema, $"{Field}.json_schema.schema"),
                };
                if (error is not null)
                {
                    errors.Add(param!, error);
                    return null;
                }

                return new ResponseFormat(ResponseFormat.JsonSchemaType, schema!.Name, schema.Description, Schema(schema.Schema), schema.Strict);
            default:
                errors.Add($"{Field}.type", $"'{Field}.type' must be one of: text, json_object, json_schema.");
                return null;
        }
    }

    private static (string? Param, string? Error) SchemaError(JsonElement? schema, string at) => schema switch
    {
        null or { ValueKind: JsonValueKind.Null } => (null, null),
        { ValueKind: not JsonValueKind.Object } => (at, $"'{at}' must be a JSON schema object."),
        { } value when Depth(value, MaxSchemaDepth) > MaxSchemaDepth => (at, $"'{at}' is nested too deeply: a JSON schema may nest at most {MaxSchemaDepth} levels."),
        _ => (null, null),
    };

    private static JsonElement? Schema(JsonElement? schema) => schema is { ValueKind: JsonValueKind.Object } ? schema : null;

    /// <summary>Nesting of objects and arrays, counted no further than one past <paramref name="limit"/> (the reader bounds the recursion).</summary>
    private static int Depth(JsonElement value, int limit)
    {
        if (value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array))
        {
            return 0;
        }

        var deepest = 0;
        if (limit >= 0)
        {
            var children = value.ValueKind == JsonValueKind.Object
                ? value.EnumerateObject().Select(p => p.Value)
                : value.EnumerateArray();
            foreach (var child in children)
            {
                deepest = Math.Max(deepest, Depth(child, limit - 1));
                if (deepest > limit)
                {
                    break;
                }
            }
        }

        return deepest + 1;
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex ToolName();
}
