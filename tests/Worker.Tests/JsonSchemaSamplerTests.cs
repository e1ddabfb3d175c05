using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VixAspire.Worker.Providers.Synthetic;

namespace VixAspire.Worker.Tests;

public class JsonSchemaSamplerTests
{
    public static TheoryData<string> Schemas => new()
    {
        """{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}""",
        """{"type":"object","properties":{"owner":{"type":"object","properties":{"name":{"type":"string","minLength":3,"maxLength":5},"age":{"type":"integer","exclusiveMinimum":17,"exclusiveMaximum":19}},"required":["name","age"]}},"required":["owner"]}""",
        """{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","enum":["a","b","c"]},"minItems":3,"maxItems":3,"uniqueItems":true},"flags":{"type":"array","items":{"type":"boolean"},"maxItems":1}},"required":["tags","flags"]}""",
        """{"type":"object","properties":{"price":{"type":"number","minimum":0.5,"maximum":0.75},"step":{"type":"number","multipleOf":0.01,"minimum":3.333},"odd":{"type":"integer","multipleOf":7,"minimum":100,"maximum":110},"half":{"type":"integer","multipleOf":2.5,"minimum":1}},"required":["price","step","odd","half"]}""",
        """{"type":"object","properties":{"when":{"type":"string","format":"date-time"},"day":{"type":"string","format":"date"},"mail":{"type":"string","format":"email"},"id":{"type":"string","format":"uuid"},"site":{"type":"string","format":"uri"}},"required":["when","day","mail","id","site"]}""",
        """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-\\d{4}$"},"fixed":{"const":{"v":[1,2]}},"maybe":{"type":["string","null"]},"old":{"type":"integer","nullable":true}},"required":["code","fixed","maybe","old"]}""",
        """{"type":"object","properties":{"shape":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/circle"}]},"other":{"oneOf":[{"$ref":"#/definitions/square"},{"type":"string"}]}},"required":["shape","other"],"$defs":{"circle":{"type":"object","properties":{"radius":{"type":"number","exclusiveMinimum":0}},"required":["radius"]}},"definitions":{"square":{"type":"object","properties":{"side":{"type":"integer","minimum":1}},"required":["side"],"additionalProperties":false}}}""",
        """{"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},{"type":"object","properties":{"b":{"type":"boolean"}},"required":["b"]}]}""",
        """{"type":"object","properties":{"level":{"type":"number","minimum":10,"exclusiveMinimum":true,"maximum":11,"exclusiveMaximum":true}},"required":["level"]}""",
        """{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"minItems":2}""",
        """{"type":"object","required":["x","y"],"additionalProperties":{"type":"integer","maximum":-5},"minProperties":4}""",
    };

    [Theory]
    [MemberData(nameof(Schemas))]
    public void TheSampleIsValidForItsSchema(string schemaJson)
    {
        var schema = Parse(schemaJson);

        for (var seed = 0u; seed < 20; seed++)
        {
            var json = JsonSchemaSampler.SampleJson(schema, seed);
            Assert.Empty(SchemaValidator.Errors(schema, json));
        }
    }

    [Theory]
    [MemberData(nameof(Schemas))]
    public void TheSameSchemaAndSeedGiveTheSameValue(string schemaJson)
    {
        var schema = Parse(schemaJson);

        Assert.Equal(JsonSchemaSampler.SampleJson(schema, 7), JsonSchemaSampler.SampleJson(Parse(schemaJson), 7));
    }

    [Fact]
    public void AnotherSeedVariesTheValues()
    {
        var schema = Parse("""{"type":"object","properties":{"n":{"type":"integer"},"s":{"type":"string"}},"required":["n","s"]}""");

        var samples = Enumerable.Range(0, 10).Select(seed => JsonSchemaSampler.SampleJson(schema, (uint)seed)).Distinct().Count();

        Assert.True(samples > 1, "ten seeds gave one value");
    }

    [Fact]
    public void RequiredAndOptionalPropertiesArePresentAndOnlyDeclaredOnesWhenAdditionalAreRefused()
    {
        var schema = Parse("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}""");

        var value = Assert.IsType<JsonObject>(JsonSchemaSampler.Sample(schema));

        Assert.Equal(["a", "b"], value.Select(p => p.Key).Order());
    }

    [Fact]
    public void MaxPropertiesLeavesOutOptionalPropertiesButKeepsRequiredOnes()
    {
        var schema = Parse("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"type":"string"}},"required":["c"],"maxProperties":2}""");

        var value = Assert.IsType<JsonObject>(JsonSchemaSampler.Sample(schema));

        Assert.Equal(2, value.Count);
        Assert.True(value.ContainsKey("c"));
    }

    [Fact]
    public void APatternTooHardToSatisfyStillGivesAString()
    {
        var schema = Parse("""{"type":"string","pattern":"^(foo|bar)+(?=x)$"}""");

        var value = JsonSchemaSampler.Sample(schema);

        Assert.Equal(JsonValueKind.String, value!.GetValueKind());
    }

    [Fact]
    public void ARecursiveReferenceStopsAtTheDepthBound()
    {
        var schema = Parse("""{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"child":{"$ref":"#/$defs/node"}},"required":["child"]}}}""");

        var value = JsonSchemaSampler.Sample(schema);

        Assert.InRange(Depth(value), 1, JsonSchemaSampler.MaxDepth + 1);
    }

    [Fact]
    public void ASchemaNestedTenThousandLevelsFinishesQuicklyWithABoundedObject()
    {
        var schema = Deep;
        var clock = Stopwatch.StartNew();

        var value = JsonSchemaSampler.Sample(schema, 3);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.IsType<JsonObject>(value);
        Assert.InRange(Depth(value), 1, JsonSchemaSampler.MaxDepth + 1);
    }

    [Fact]
    public void ANineHundredKilobyteSchemaFinishesQuicklyWithABoundedValue()
    {
        var schema = Huge;
        var clock = Stopwatch.StartNew();

        var value = JsonSchemaSampler.Sample(schema, 3);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        var members = Assert.IsType<JsonObject>(value);
        Assert.Equal(schema.GetProperty("required").GetArrayLength(), members.Count);
        Assert.InRange(members.Count(m => m.Value is not null), 1, JsonSchemaSampler.MaxValues);
    }

    [Fact]
    public void HugeLengthsAndCountsAreCappedInsteadOfFollowed()
    {
        var schema = Parse("""{"type":"object","properties":{"s":{"type":"string","minLength":100000000},"a":{"type":"array","minItems":100000000}},"required":["s","a"]}""");

        var json = JsonSchemaSampler.SampleJson(schema);

        Assert.InRange(json.Length, 1, 2 * (JsonSchemaSampler.MaxStringLength + JsonSchemaSampler.MaxValues * 16));
    }

    [Fact]
    public void BooleanSchemasAndEmptySchemasGiveSomeValue()
    {
        Assert.Empty(SchemaValidator.Errors(Parse("true"), JsonSchemaSampler.SampleJson(Parse("true"))));
        Assert.Empty(SchemaValidator.Errors(Parse("{}"), JsonSchemaSampler.SampleJson(Parse("{}"))));
        Assert.Equal("null", JsonSchemaSampler.SampleJson(Parse("""{"type":"null"}""")));
    }

    internal static JsonElement Parse(string json, int maxDepth = 64)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = maxDepth });
        return document.RootElement.Clone();
    }

    // Parsing a document this deep takes System.Text.Json about a second, so each is parsed once for all tests.
    private static readonly Lazy<JsonElement> DeepSchema = new(() => Parse(Nested(10_000), maxDepth: 10_001));
    private static readonly Lazy<JsonElement> WideSchema = new(() => Parse(Wide(900 * 1024)));

    /// <summary>Object schemas inside one another, 10,000 levels of JSON deep.</summary>
    internal static JsonElement Deep => DeepSchema.Value;

    /// <summary>An object schema of 900 KB: thousands of required object properties.</summary>
    internal static JsonElement Huge => WideSchema.Value;

    // Each object schema holds the next one inside its properties: two levels of JSON per schema.
    private static string Nested(int levels)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < levels / 2; i++)
        {
            builder.Append("""{"type":"object","required":["next"],"properties":{"next":""");
        }

        builder.Append("""{"type":"string"}""");
        builder.Append('}', levels / 2 * 2);
        return builder.ToString();
    }

    private static string Wide(int bytes)
    {
        var builder = new StringBuilder("""{"type":"object","properties":{""");
        var description = new string('d', 80);
        var names = new List<string>();
        for (var i = 0; builder.Length < bytes; i++)
        {
            names.Add($"p{i}");
            builder.Append(i == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"\"p{i}\":{{\"type\":\"object\",\"description\":\"{description}\",")
                .Append("""
                    "properties":{"v":{"type":"string"}},"required":["v"]}
                    """);
        }

        builder.Append("},\"required\":[").AppendJoin(',', names.Select(n => $"\"{n}\"")).Append("]}");
        return builder.ToString();
    }

    private static int Depth(JsonNode? node) => node switch
    {
        JsonObject obj => 1 + obj.Select(p => Depth(p.Value)).DefaultIfEmpty(0).Max(),
        JsonArray array => 1 + array.Select(Depth).DefaultIfEmpty(0).Max(),
        _ => 0,
    };
}
