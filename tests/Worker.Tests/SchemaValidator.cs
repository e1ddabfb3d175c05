using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VixAspire.Worker.Tests;

/// <summary>
/// A small JSON schema checker written apart from the sampler, keyword by keyword, so a sampled value is judged by
/// code that did not make it. Returns the broken rules with their paths; empty means valid.
/// </summary>
internal static class SchemaValidator
{
    public static List<string> Errors(JsonElement schema, JsonNode? value)
    {
        var errors = new List<string>();
        Check(schema, schema, value, "$", errors, 0);
        return errors;
    }

    public static List<string> Errors(JsonElement schema, string json) => Errors(schema, JsonNode.Parse(json));

    private static void Check(JsonElement root, JsonElement schema, JsonNode? value, string path, List<string> errors, int depth)
    {
        if (depth > 64 || schema.ValueKind == JsonValueKind.True)
        {
            return;
        }

        if (schema.ValueKind == JsonValueKind.False)
        {
            errors.Add($"{path}: the schema false accepts nothing");
            return;
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            Check(root, Resolve(root, reference.GetString()!), value, path, errors, depth + 1);
        }

        if (schema.TryGetProperty("const", out var constant) && !JsonNode.DeepEquals(JsonNode.Parse(constant.GetRawText()), value))
        {
            errors.Add($"{path}: not the const {constant.GetRawText()}");
        }

        if (schema.TryGetProperty("enum", out var choices) && !choices.EnumerateArray().Any(c => JsonNode.DeepEquals(JsonNode.Parse(c.GetRawText()), value)))
        {
            errors.Add($"{path}: {value?.ToJsonString() ?? "null"} is not in the enum");
        }

        if (schema.TryGetProperty("anyOf", out var anyOf) && !anyOf.EnumerateArray().Any(b => Errors(root, b, value, path, depth).Count == 0))
        {
            errors.Add($"{path}: matches no anyOf branch");
        }

        if (schema.TryGetProperty("oneOf", out var oneOf) && oneOf.EnumerateArray().Count(b => Errors(root, b, value, path, depth).Count == 0) != 1)
        {
            errors.Add($"{path}: does not match exactly one oneOf branch");
        }

        if (schema.TryGetProperty("allOf", out var allOf))
        {
            foreach (var branch in allOf.EnumerateArray())
            {
                Check(root, branch, value, path, errors, depth + 1);
            }
        }

        if (schema.TryGetProperty("type", out var type))
        {
            var types = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (!types.Exists(t => IsType(value, t)) && !(value is null && schema.TryGetProperty("nullable", out var n) && n.ValueKind == JsonValueKind.True))
            {
                errors.Add($"{path}: {value?.ToJsonString() ?? "null"} is not of type {string.Join('|', types)}");
            }
        }

        switch (value)
        {
            case JsonObject obj:
                CheckObject(root, schema, obj, path, errors, depth);
                break;
            case JsonArray array:
                CheckArray(root, schema, array, path, errors, depth);
                break;
            case JsonValue scalar when scalar.GetValueKind() == JsonValueKind.String:
                CheckString(schema, scalar.GetValue<string>(), path, errors);
                break;
            case JsonValue scalar when scalar.GetValueKind() == JsonValueKind.Number:
                CheckNumber(schema, decimal.Parse(scalar.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture), path, errors);
                break;
        }
    }

    private static List<string> Errors(JsonElement root, JsonElement schema, JsonNode? value, string path, int depth)
    {
        var errors = new List<string>();
        Check(root, schema, value, path, errors, depth + 1);
        return errors;
    }

    private static void CheckObject(JsonElement root, JsonElement schema, JsonObject obj, string path, List<string> errors, int depth)
    {
        if (schema.TryGetProperty("required", out var required))
        {
            foreach (var name in required.EnumerateArray().Select(r => r.GetString()!).Where(n => !obj.ContainsKey(n)))
            {
                errors.Add($"{path}: required property {name} is missing");
            }
        }

        var declared = schema.TryGetProperty("properties", out var properties) ? properties : default;
        foreach (var (name, member) in obj)
        {
            if (declared.ValueKind == JsonValueKind.Object && declared.TryGetProperty(name, out var propertySchema))
            {
                Check(root, propertySchema, member, $"{path}.{name}", errors, depth + 1);
            }
            else if (schema.TryGetProperty("additionalProperties", out var additional))
            {
                Check(root, additional, member, $"{path}.{name}", errors, depth + 1);
            }
        }

        if (Int(schema, "minProperties") is { } min && obj.Count < min)
        {
            errors.Add($"{path}: fewer than {min} properties");
        }

        if (Int(schema, "maxProperties") is { } max && obj.Count > max)
        {
            errors.Add($"{path}: more than {max} properties");
        }
    }

    private static void CheckArray(JsonElement root, JsonElement schema, JsonArray array, string path, List<string> errors, int depth)
    {
        if (Int(schema, "minItems") is { } min && array.Count < min)
        {
            errors.Add($"{path}: fewer than {min} items");
        }

        if (Int(schema, "maxItems") is { } max && array.Count > max)
        {
            errors.Add($"{path}: more than {max} items");
        }

        var prefix = schema.TryGetProperty("prefixItems", out var p) ? p.GetArrayLength() : 0;
        for (var i = 0; i < array.Count; i++)
        {
            if (i < prefix)
            {
                Check(root, p[i], array[i], $"{path}[{i}]", errors, depth + 1);
            }
            else if (schema.TryGetProperty("items", out var items) && items.ValueKind != JsonValueKind.Array)
            {
                Check(root, items, array[i], $"{path}[{i}]", errors, depth + 1);
            }
        }

        if (schema.TryGetProperty("uniqueItems", out var unique) && unique.ValueKind == JsonValueKind.True
            && array.Select(a => a?.ToJsonString()).Distinct().Count() != array.Count)
        {
            errors.Add($"{path}: items are not unique");
        }
    }

    private static void CheckString(JsonElement schema, string text, string path, List<string> errors)
    {
        var length = new StringInfo(text).LengthInTextElements;
        if (Int(schema, "minLength") is { } min && length < min)
        {
            errors.Add($"{path}: shorter than {min}");
        }

        if (Int(schema, "maxLength") is { } max && length > max)
        {
            errors.Add($"{path}: longer than {max}");
        }

        if (schema.TryGetProperty("pattern", out var pattern) && !Regex.IsMatch(text, pattern.GetString()!, RegexOptions.None, TimeSpan.FromSeconds(1)))
        {
            errors.Add($"{path}: '{text}' does not match {pattern.GetString()}");
        }

        if (schema.TryGetProperty("format", out var format))
        {
            var ok = format.GetString() switch
            {
                "date" => DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
                "date-time" => DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out _) && text.Contains('T', StringComparison.Ordinal),
                "email" => Regex.IsMatch(text, @"^[^@\s]+@[^@\s]+\.[^@\s]+$", RegexOptions.None, TimeSpan.FromSeconds(1)),
                "uri" => Uri.TryCreate(text, UriKind.Absolute, out _),
                "uuid" => Guid.TryParseExact(text, "D", out _),
                _ => true,
            };
            if (!ok)
            {
                errors.Add($"{path}: '{text}' is not a {format.GetString()}");
            }
        }
    }

    private static void CheckNumber(JsonElement schema, decimal number, string path, List<string> errors)
    {
        if (Dec(schema, "minimum") is { } min && (number < min || (schema.TryGetProperty("exclusiveMinimum", out var exMin) && exMin.ValueKind == JsonValueKind.True && number == min)))
        {
            errors.Add($"{path}: {number} is below the minimum {min}");
        }

        if (Dec(schema, "maximum") is { } max && (number > max || (schema.TryGetProperty("exclusiveMaximum", out var exMax) && exMax.ValueKind == JsonValueKind.True && number == max)))
        {
            errors.Add($"{path}: {number} is above the maximum {max}");
        }

        if (Dec(schema, "exclusiveMinimum") is { } exclusiveMin && number <= exclusiveMin)
        {
            errors.Add($"{path}: {number} is not above {exclusiveMin}");
        }

        if (Dec(schema, "exclusiveMaximum") is { } exclusiveMax && number >= exclusiveMax)
        {
            errors.Add($"{path}: {number} is not below {exclusiveMax}");
        }

        if (Dec(schema, "multipleOf") is { } step && number % step != 0)
        {
            errors.Add($"{path}: {number} is not a multiple of {step}");
        }
    }

    private static bool IsType(JsonNode? value, string type) => (type, value?.GetValueKind()) switch
    {
        ("null", null or JsonValueKind.Null) => true,
        ("object", JsonValueKind.Object) => true,
        ("array", JsonValueKind.Array) => true,
        ("string", JsonValueKind.String) => true,
        ("boolean", JsonValueKind.True or JsonValueKind.False) => true,
        ("number", JsonValueKind.Number) => true,
        ("integer", JsonValueKind.Number) => decimal.Parse(value!.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture) % 1 == 0,
        _ => false,
    };

    private static JsonElement Resolve(JsonElement root, string pointer)
    {
        var target = root;
        foreach (var segment in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            target = target.GetProperty(segment.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }

        return target;
    }

    private static int? Int(JsonElement schema, string keyword) => schema.TryGetProperty(keyword, out var v) ? v.GetInt32() : null;

    private static decimal? Dec(JsonElement schema, string keyword) =>
        schema.TryGetProperty(keyword, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDecimal() : null;
}
