using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VixAspire.Worker.Providers.Synthetic;

/// <summary>
/// Makes one JSON value that satisfies a JSON schema, the same value for the same schema and seed. Covers the
/// keywords tool parameters and structured output use; the walk is bounded in depth and in values made, so a
/// hostile schema degrades to <c>null</c> (or <c>{}</c> at the root) instead of hanging or overflowing the stack.
/// </summary>
public sealed class JsonSchemaSampler
{
    public const int MaxDepth = 32;

    /// <summary>Values made per sample; past it, optional properties are left out and further values are null.</summary>
    public const int MaxValues = 2_000;

    public const int MaxStringLength = 4_096;

    private const int DefaultArrayLength = 2;
    private const int MaxPatternLength = 256;
    private const int MaxConstLength = 64 * 1024;

    private static readonly string[] Cities = ["Paris", "Tokyo", "Lisbon", "Nairobi", "Toronto", "Oslo", "Lima", "Seoul"];
    private static readonly string[] Countries = ["France", "Japan", "Portugal", "Kenya", "Canada", "Norway", "Peru", "Korea"];
    private static readonly string[] Names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"];

    private readonly JsonElement _root;
    private readonly uint _seed;
    private int _values;

    private JsonSchemaSampler(JsonElement root, uint seed)
    {
        _root = root;
        _seed = seed;
    }

    /// <summary>A value for <paramref name="schema"/>; an object schema past the bounds still gives an object.</summary>
    public static JsonNode? Sample(JsonElement schema, uint seed = 0)
    {
        var sampler = new JsonSchemaSampler(schema, seed);
        var value = sampler.Value(schema, "$", 0);
        return value is null && sampler.RootWantsObject() ? new JsonObject() : value;
    }

    /// <summary>The compact JSON text of <see cref="Sample"/>.</summary>
    public static string SampleJson(JsonElement schema, uint seed = 0) =>
        Sample(schema, seed)?.ToJsonString() ?? "null";

    private bool RootWantsObject() =>
        _root.ValueKind == JsonValueKind.Object
        && (Types(_root).Contains("object") || _root.TryGetProperty("properties", out _));

    private JsonNode? Value(JsonElement schema, string path, int depth)
    {
        if (depth > MaxDepth || ++_values > MaxValues)
        {
            return null;
        }

        // `true` and `{}` accept anything; `false` accepts nothing, so any value is as good as another.
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return Text(path, schema);
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            return Resolve(reference) is { } target ? Value(target, path, depth + 1) : Text(path, schema);
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            return Copy(constant);
        }

        if (schema.TryGetProperty("enum", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
        {
            return Copy(choices[(int)(Hash(path) % (uint)choices.GetArrayLength())]);
        }

        foreach (var keyword in (ReadOnlySpan<string>)["anyOf", "oneOf"])
        {
            if (schema.TryGetProperty(keyword, out var branches) && First(branches) is { } branch)
            {
                return Value(branch, path, depth + 1);
            }
        }

        if (schema.TryGetProperty("allOf", out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            return AllOf(schema, parts, path, depth);
        }

        return Typed(schema, path, depth);
    }

    private JsonNode? Typed(JsonElement schema, string path, int depth)
    {
        var types = Types(schema);
        var type = types.FirstOrDefault(t => t != "null")
            ?? (types.Count > 0 ? "null"
                : schema.TryGetProperty("properties", out _) || schema.TryGetProperty("required", out _) ? "object"
                : schema.TryGetProperty("items", out _) || schema.TryGetProperty("prefixItems", out _) ? "array"
                : schema.TryGetProperty("minimum", out _) || schema.TryGetProperty("maximum", out _) ? "number"
                : "string");

        return type switch
        {
            "object" => Object(schema, path, depth),
            "array" => Array(schema, path, depth),
            "integer" => Number(schema, path, integer: true),
            "number" => Number(schema, path, integer: false),
            "boolean" => JsonValue.Create(Hash(path) % 2 == 0),
            "null" => null,
            _ => Text(path, schema),
        };
    }

    private JsonObject Object(JsonElement schema, string path, int depth)
    {
        var result = new JsonObject();
        var required = new List<string>();
        if (schema.TryGetProperty("required", out var names) && names.ValueKind == JsonValueKind.Array)
        {
            required.AddRange(names.EnumerateArray().Where(n => n.ValueKind == JsonValueKind.String).Select(n => n.GetString()!).Distinct(StringComparer.Ordinal));
        }

        var requiredSet = required.ToHashSet(StringComparer.Ordinal);
        var maxProperties = Count(schema, "maxProperties") ?? int.MaxValue;
        var declared = schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object;
        var additional = schema.TryGetProperty("additionalProperties", out var extra) ? extra : default;

        if (declared)
        {
            // Required properties still to come, so optional ones leave room for them under maxProperties.
            var pending = properties.EnumerateObject().Select(p => p.Name).Distinct(StringComparer.Ordinal).Count(requiredSet.Contains);
            foreach (var property in properties.EnumerateObject())
            {
                var isRequired = requiredSet.Contains(property.Name);
                if (result.ContainsKey(property.Name))
                {
                    continue;
                }

                if (isRequired || (_values < MaxValues && result.Count + pending < maxProperties))
                {
                    pending -= isRequired ? 1 : 0;
                    result[property.Name] = Value(property.Value, string.Concat(path, ".", property.Name), depth + 1);
                }
            }
        }

        // Required names that no property declares take the additional-properties schema, or any value.
        foreach (var name in required.Where(n => !result.ContainsKey(n)))
        {
            result[name] = Undeclared(additional, string.Concat(path, ".", name), depth);
        }

        var minProperties = Math.Min(Count(schema, "minProperties") ?? 0, MaxValues);
        if (additional.ValueKind != JsonValueKind.False)
        {
            for (var i = 0; result.Count < minProperties && _values < MaxValues; i++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"extra_{i}");
                if (!result.ContainsKey(name))
                {
                    result[name] = Undeclared(additional, string.Concat(path, ".", name), depth);
                }
            }
        }

        return result;
    }

    private JsonNode? Undeclared(JsonElement additional, string path, int depth) =>
        additional.ValueKind == JsonValueKind.Object ? Value(additional, path, depth + 1) : Text(path, default);

    private JsonArray Array(JsonElement schema, string path, int depth)
    {
        var result = new JsonArray();
        var min = Math.Min(Count(schema, "minItems") ?? 0, MaxValues);
        var max = Count(schema, "maxItems") ?? int.MaxValue;
        var length = Math.Min(Math.Max(DefaultArrayLength, min), max);
        var prefix = schema.TryGetProperty("prefixItems", out var tuple) && tuple.ValueKind == JsonValueKind.Array ? tuple : default;
        var items = schema.TryGetProperty("items", out var each) ? each : default;
        var unique = schema.TryGetProperty("uniqueItems", out var distinct) && distinct.ValueKind == JsonValueKind.True;

        for (var i = 0; i < length && (_values < MaxValues || i < min); i++)
        {
            var itemPath = string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]");
            var itemSchema = prefix.ValueKind == JsonValueKind.Array && i < prefix.GetArrayLength() ? prefix[i]
                : items.ValueKind == JsonValueKind.Array && i < items.GetArrayLength() ? items[i] // draft 4 tuples
                : items.ValueKind is JsonValueKind.Object or JsonValueKind.True ? items
                : default;
            if (itemSchema.ValueKind == JsonValueKind.Undefined && i >= min)
            {
                break;
            }

            result.Add(unique ? Unique(result, itemSchema, itemPath, i, depth) : Value(itemSchema, itemPath, depth + 1));
        }

        return result;
    }

    // An enum's values in turn, else a few other variants of the item, until one differs from those made.
    private JsonNode? Unique(JsonArray made, JsonElement schema, string path, int index, int depth)
    {
        if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("enum", out var choices)
            && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
        {
            return Copy(choices[(int)((Hash(path[..path.LastIndexOf('[')]) + (uint)index) % (uint)choices.GetArrayLength())]);
        }

        JsonNode? value = null;
        for (var variant = 0; variant < 8; variant++)
        {
            value = Value(schema, variant == 0 ? path : string.Create(CultureInfo.InvariantCulture, $"{path}~{variant}"), depth + 1);
            var text = value?.ToJsonString();
            if (!made.Any(m => m?.ToJsonString() == text))
            {
                break;
            }
        }

        return value;
    }

    private JsonNode? AllOf(JsonElement schema, JsonElement parts, string path, int depth)
    {
        JsonNode? first = null;
        var merged = new JsonObject();
        var allObjects = true;
        foreach (var part in parts.EnumerateArray())
        {
            var value = Value(part, path, depth + 1);
            first ??= value;
            if (value is JsonObject members)
            {
                foreach (var (name, member) in members.ToList())
                {
                    members.Remove(name);
                    merged[name] ??= member;
                }
            }
            else
            {
                allObjects = false;
            }
        }

        // Sibling keywords next to allOf constrain the same value; an object's own properties join the merge.
        if (allObjects && (schema.TryGetProperty("properties", out _) || schema.TryGetProperty("required", out _))
            && Object(schema, path, depth) is { } own)
        {
            foreach (var (name, member) in own.ToList())
            {
                own.Remove(name);
                merged[name] ??= member;
            }
        }

        return allObjects ? merged : first;
    }

    private JsonValue Number(JsonElement schema, string path, bool integer)
    {
        var (low, lowExclusive) = Bound(schema, "minimum", "exclusiveMinimum", lower: true);
        var (high, highExclusive) = Bound(schema, "maximum", "exclusiveMaximum", lower: false);
        var step = Decimal(schema, "multipleOf") is { } m && m > 0 ? m : integer ? 1m : (decimal?)null;
        try
        {
            return Emit(step is { } s
                ? Multiple(s, low, lowExclusive, high, highExclusive, Hash(path), integer)
                : Real(low, high, Hash(path)));
        }
        catch (OverflowException)
        {
            return Emit(low ?? high ?? 0); // bounds beyond decimal's range: the bound itself is the best guess
        }
    }

    // Strictly inside both bounds, so exclusive bounds hold too; a short decimal when rounding keeps it inside.
    private static decimal Real(decimal? low, decimal? high, uint hash)
    {
        var offset = hash % 100 + 0.5m;
        switch (low, high)
        {
            case ({ } a, { } b) when b > a:
                var inside = a + (b - a) * ((hash % 3 + 1) * 0.25m);
                var rounded = Math.Round(inside, 2);
                return rounded > a && rounded < b ? rounded : inside;
            case ({ } a, { }):
                return a;
            case ({ } a, null):
                return a + offset;
            case (null, { } b):
                return b - offset;
            default:
                return offset;
        }
    }

    // k·step for an integer k between the bounds, varied by the hash within a small span.
    private static decimal Multiple(decimal step, decimal? low, bool lowExclusive, decimal? high, bool highExclusive, uint hash, bool integer)
    {
        const int Span = 100;
        decimal? kLow = low is { } l ? (lowExclusive ? Math.Floor(l / step) + 1 : Math.Ceiling(l / step)) : null;
        decimal? kHigh = high is { } h ? (highExclusive ? Math.Ceiling(h / step) - 1 : Math.Floor(h / step)) : null;
        var start = kLow ?? Math.Min(1, kHigh ?? 1);
        var end = kHigh ?? start + Span;
        if (end < start)
        {
            return start * step;
        }

        var k = start + hash % (uint)(Math.Min(end - start, Span) + 1);
        for (var tries = 0; integer && k * step != Math.Truncate(k * step) && tries < 1_000; tries++)
        {
            k = k < end ? k + 1 : start;
        }

        return k * step;
    }

    private static JsonValue Emit(decimal value) =>
        value == Math.Truncate(value) && value is >= long.MinValue and <= long.MaxValue
            ? JsonValue.Create((long)value)
            : JsonValue.Create(value);

    private static (decimal? Value, bool Exclusive) Bound(JsonElement schema, string inclusive, string exclusive, bool lower)
    {
        var plain = Decimal(schema, inclusive);
        if (schema.TryGetProperty(exclusive, out var flag))
        {
            // Draft 4 spells exclusiveness as a boolean beside the bound; later drafts as a bound of its own.
            if (flag.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                return (plain, flag.ValueKind == JsonValueKind.True);
            }

            if (flag.ValueKind == JsonValueKind.Number && flag.TryGetDecimal(out var limit))
            {
                var tighter = plain is not { } p || (lower ? limit >= p : limit <= p);
                return tighter ? (limit, true) : (plain, false);
            }
        }

        return (plain, false);
    }

    private JsonValue Text(string path, JsonElement schema)
    {
        var min = schema.ValueKind == JsonValueKind.Object ? Math.Min(Count(schema, "minLength") ?? 0, MaxStringLength) : 0;
        var max = schema.ValueKind == JsonValueKind.Object ? Math.Min(Count(schema, "maxLength") ?? MaxStringLength, MaxStringLength) : MaxStringLength;
        var format = schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
        var pattern = schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

        if (pattern is not null && PatternText(pattern) is { } matching && matching.Length >= min && matching.Length <= max)
        {
            return JsonValue.Create(matching);
        }

        var text = Formatted(format, path) ?? Meaningful(path) ?? Words(path, 2);
        return JsonValue.Create(Fit(text, min, max, path));
    }

    private string? Formatted(string? format, string path)
    {
        var h = Hash(path);
        var day = new DateTime(2024, 1, 1, 9, 30, 0, DateTimeKind.Utc).AddDays(h % 365).AddMinutes(h % 600);
        return format switch
        {
            "date" => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            "date-time" => day.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            "time" => day.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
            "email" or "idn-email" => string.Concat(Names[h % (uint)Names.Length].ToLowerInvariant(), "@example.com"),
            "uri" or "url" or "iri" or "uri-reference" => string.Concat("https://example.com/", Words(path, 1)),
            "hostname" or "idn-hostname" => string.Concat(Words(path, 1), ".example.com"),
            "ipv4" => string.Create(CultureInfo.InvariantCulture, $"192.0.2.{h % 254 + 1}"),
            "ipv6" => string.Create(CultureInfo.InvariantCulture, $"2001:db8::{h % 0xffff + 1:x}"),
            "uuid" => Uuid(path),
            "duration" => string.Create(CultureInfo.InvariantCulture, $"PT{h % 59 + 1}M"),
            _ => null,
        };
    }

    private string Uuid(string path)
    {
        Span<byte> bytes = stackalloc byte[16];
        for (var i = 0; i < 4; i++)
        {
            BitConverter.TryWriteBytes(bytes[(i * 4)..], Hash(string.Concat(path, "#", i.ToString(CultureInfo.InvariantCulture))));
        }

        bytes[7] = (byte)((bytes[7] & 0x0f) | 0x40); // version 4 (Guid's byte order)
        bytes[8] = (byte)((bytes[8] & 0x3f) | 0x80); // RFC 4122 variant
        return new Guid(bytes).ToString();
    }

    // A value that reads like what the property asks for, when its name says so.
    private string? Meaningful(string path)
    {
        var name = path[(path.LastIndexOf('.') + 1)..].ToLowerInvariant();
        var h = Hash(path);
        return name switch
        {
            _ when name.Contains("email", StringComparison.Ordinal) => Formatted("email", path),
            _ when name.Contains("city", StringComparison.Ordinal) || name == "location" => Cities[h % (uint)Cities.Length],
            _ when name.Contains("country", StringComparison.Ordinal) => Countries[h % (uint)Countries.Length],
            _ when name.EndsWith("name", StringComparison.Ordinal) => Names[h % (uint)Names.Length],
            _ when name.Contains("url", StringComparison.Ordinal) || name.Contains("uri", StringComparison.Ordinal) => Formatted("uri", path),
            _ when name is "date" || name.EndsWith("_date", StringComparison.Ordinal) => Formatted("date", path),
            _ => null,
        };
    }

    private string Words(string path, int count)
    {
        var builder = new StringBuilder();
        var h = Hash(path);
        for (var i = 0; i < count; i++)
        {
            builder.Append(SyntheticChatClient.TokenText(h, i));
        }

        return builder.ToString();
    }

    private string Fit(string text, int min, int max, string path)
    {
        if (min > max)
        {
            max = min;
        }

        var builder = new StringBuilder(text);
        for (var i = 1; builder.Length < min; i++)
        {
            builder.Append(SyntheticChatClient.TokenText(Hash(path), i));
        }

        if (builder.Length > max)
        {
            builder.Length = max > 0 && char.IsHighSurrogate(builder[max - 1]) ? max - 1 : max;
        }

        return builder.ToString();
    }

    // Builds a string from a pattern of literals, classes and quantifiers, then checks it really matches;
    // anything the walk does not understand gives null and the caller falls back to plain text.
    private static string? PatternText(string pattern)
    {
        if (pattern.Length > MaxPatternLength)
        {
            return null;
        }

        var builder = new StringBuilder();
        var i = 0;
        if (i < pattern.Length && pattern[i] == '^')
        {
            i++;
        }

        while (i < pattern.Length)
        {
            if (pattern[i] == '$' && i == pattern.Length - 1)
            {
                break;
            }

            string? atom;
            (atom, i) = Atom(pattern, i);
            if (atom is null)
            {
                return null;
            }

            var (repeat, next) = Quantifier(pattern, i);
            if (repeat < 0)
            {
                return null;
            }

            i = next;
            for (var r = 0; r < repeat; r++)
            {
                builder.Append(atom);
            }
        }

        var text = builder.ToString();
        try
        {
            return Regex.IsMatch(text, pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)) ? text : null;
        }
        catch (Exception e) when (e is ArgumentException or RegexMatchTimeoutException)
        {
            return null;
        }
    }

    private static (string? Atom, int Next) Atom(string pattern, int i)
    {
        var c = pattern[i];
        switch (c)
        {
            case '\\' when i + 1 < pattern.Length:
                return pattern[i + 1] switch
                {
                    'd' => ("7", i + 2),
                    'w' => ("a", i + 2),
                    's' => (" ", i + 2),
                    var e when !char.IsLetterOrDigit(e) => (e.ToString(), i + 2),
                    _ => (null, i),
                };
            case '[':
                var close = pattern.IndexOf(']', i + 1);
                if (close < 0 || pattern[i + 1] == '^')
                {
                    return (null, i);
                }

                var first = pattern[i + 1];
                if (first == '\\' && i + 2 < close)
                {
                    return (pattern[i + 2] switch { 'd' => "7", 'w' => "a", var e => e.ToString() }, close + 1);
                }

                return (first.ToString(), close + 1);
            case '.':
                return ("a", i + 1);
            case '(' or ')' or '|' or '{' or '}' or '*' or '+' or '?' or '^' or '$' or ']':
                return (null, i);
            default:
                return (c.ToString(), i + 1);
        }
    }

    // How many times to repeat the atom before index i: a few for `+` and `*`, the least a `{n,m}` allows (at
    // least one when allowed), -1 for what the walk does not understand.
    private static (int Repeat, int Next) Quantifier(string pattern, int i)
    {
        if (i >= pattern.Length)
        {
            return (1, i);
        }

        switch (pattern[i])
        {
            case '+' or '*':
                return (3, i + 1);
            case '?':
                return (1, i + 1);
            case '{':
                var close = pattern.IndexOf('}', i);
                if (close < 0)
                {
                    return (-1, i);
                }

                var bounds = pattern[(i + 1)..close].Split(',');
                if (bounds.Length > 2 || !int.TryParse(bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var min) || min > MaxPatternLength)
                {
                    return (-1, i);
                }

                var max = bounds.Length == 1 ? min
                    : bounds[1].Length == 0 ? int.MaxValue
                    : int.TryParse(bounds[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : -1;
                return max < min ? (-1, i) : (min == 0 && max > 0 ? 1 : min, close + 1);
            default:
                return (1, i);
        }
    }

    private JsonElement? Resolve(JsonElement reference)
    {
        if (reference.ValueKind != JsonValueKind.String || reference.GetString() is not { } pointer || !pointer.StartsWith('#'))
        {
            return null;
        }

        var target = _root;
        foreach (var raw in pointer[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var segment = Uri.UnescapeDataString(raw).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (target.ValueKind == JsonValueKind.Object && target.TryGetProperty(segment, out var child))
            {
                target = child;
            }
            else if (target.ValueKind == JsonValueKind.Array && int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < target.GetArrayLength())
            {
                target = target[index];
            }
            else
            {
                return null;
            }
        }

        return target;
    }

    private static JsonElement? First(JsonElement branches)
    {
        if (branches.ValueKind != JsonValueKind.Array || branches.GetArrayLength() == 0)
        {
            return null;
        }

        // A first branch of `{"type":"null"}` is valid but says nothing; prefer a branch with content.
        foreach (var branch in branches.EnumerateArray())
        {
            if (!(branch.ValueKind == JsonValueKind.Object && Types(branch) is ["null"]))
            {
                return branch;
            }
        }

        return branches[0];
    }

    private static List<string> Types(JsonElement schema)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            return [];
        }

        return type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array => [.. type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!)],
            _ => [],
        };
    }

    private static int? Count(JsonElement schema, string keyword) =>
        schema.TryGetProperty(keyword, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.TryGetInt32(out var n) ? Math.Max(n, 0) : value.TryGetDouble(out var d) && d > 0 ? int.MaxValue : 0
            : null;

    private static decimal? Decimal(JsonElement schema, string keyword) =>
        schema.TryGetProperty(keyword, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var d) ? d : null;

    private static JsonNode? Copy(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var raw = value.GetRawText();
        if (raw.Length > MaxConstLength)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(raw);
        }
        catch (JsonException)
        {
            return null; // deeper than the parser's default depth: too deep to be worth repeating
        }
    }

    // FNV-1a over the seed and the value's path: each place in the document gets its own steady choice.
    private uint Hash(string path)
    {
        var hash = 2166136261u ^ _seed;
        foreach (var c in path)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash ^ (hash >> 15);
    }
}
