using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary><c>stop</c> as every front end reads it: a string or up to 4 non-empty strings, carried in the queued request as a list.</summary>
public class StopRequestValidationTests
{
    private readonly InferenceRequestReader _reader = new(
        new FixedOptionsMonitor<StreamingOptions>(new StreamingOptions()),
        new FixedOptionsMonitor<ModelCatalogOptions>(new ModelCatalogOptions()));

    private InferenceRequestReader.ReadResult Validate(string stopJson) =>
        _reader.Validate(new InferenceRequestBody { Prompt = "a", Stop = JsonDocument.Parse(stopJson).RootElement.Clone() });

    [Theory]
    [InlineData("\"\\n\"", new[] { "\n" })]
    [InlineData("\" \"", new[] { " " })]
    [InlineData("[\"END\",\"</answer>\",\"\\n\\n\",\"中文😀\"]", new[] { "END", "</answer>", "\n\n", "中文😀" })]
    public void AStringOrUpToFourStringsBecomeTheRequestsList(string stopJson, string[] expected)
    {
        var request = Assert.IsType<InferenceRequest>(Validate(stopJson).Request);

        Assert.Equal(expected, request.Stop);
        // The queued form carries the list, and reads back the same.
        Assert.Equal(expected, InferenceRequest.FromUtf8Json(request.ToUtf8Json())!.Stop);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("[]")]
    public void NullOrAnEmptyArrayIsNoStop(string stopJson)
    {
        var request = Assert.IsType<InferenceRequest>(Validate(stopJson).Request);

        Assert.Null(request.Stop);
        Assert.DoesNotContain("stop", System.Text.Encoding.UTF8.GetString(request.ToUtf8Json()));
    }

    [Fact]
    public void WithoutStopTheQueuedRequestIsUnchanged()
    {
        var request = Assert.IsType<InferenceRequest>(_reader.Validate(new InferenceRequestBody { Prompt = "a" }).Request);

        Assert.Null(request.Stop);
        Assert.Equal("{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":128}",
            System.Text.Encoding.UTF8.GetString(request.ToUtf8Json()));
    }

    public static TheoryData<string> InvalidStops => new()
    {
        "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
        "42",
        "true",
        "{}",
        "\"\"",
        "[\"a\",\"\"]",
        "[\"a\",null]",
        "[[\"a\"]]",
        "\"" + new string('x', StopSequences.MaxChars + 1) + "\"",
        "\"" + new string('x', 10_000) + "\"",
        "\"\\ud800\"",
        "[\"ok\",\"\\udc00 low\"]",
    };

    [Theory]
    [MemberData(nameof(InvalidStops))]
    public void AnInvalidStopIsA400NamingStop(string stopJson)
    {
        var result = Validate(stopJson);

        Assert.Null(result.Request);
        var fault = Assert.IsType<RequestFault>(result.Fault);
        Assert.Equal(400, fault.Status);
        Assert.Equal("invalid_request", fault.Code);
        Assert.Equal(["stop"], fault.Errors!.Keys);
        Assert.Contains("stop", fault.Detail);
        Assert.True(fault.Detail.Length < 200, fault.Detail);
    }

    [Fact]
    public void TheLimitsAreInclusive()
    {
        var longest = new string('x', StopSequences.MaxChars);

        var request = Assert.IsType<InferenceRequest>(Validate($"[\"{longest}\",\"b\",\"c\",\"d\"]").Request);

        Assert.Equal([longest, "b", "c", "d"], request.Stop);
    }
}
