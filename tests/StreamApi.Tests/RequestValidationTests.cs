using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

public class RequestValidationTests
{
    private readonly InferenceRequestReader _reader = new(
        new FixedOptionsMonitor<StreamingOptions>(new StreamingOptions()),
        new FixedOptionsMonitor<ModelCatalogOptions>(new ModelCatalogOptions()));

    [Fact]
    public void PromptBecomesOneUserMessageWithDefaults()
    {
        var result = _reader.Validate(new InferenceRequestBody { Prompt = "hi" });

        Assert.Null(result.Fault);
        var request = Assert.IsType<InferenceRequest>(result.Request);
        Assert.Equal("synthetic", request.Model);
        Assert.Equal(128, request.MaxTokens);
        var message = Assert.Single(request.Messages);
        Assert.Equal(new ChatTurn("user", "hi"), message);
    }

    [Fact]
    public void MessagesAreKeptInOrder()
    {
        var result = _reader.Validate(new InferenceRequestBody
        {
            Messages = [new() { Role = "system", Content = "be brief" }, new() { Role = "user", Content = "hi" }],
            Model = "synthetic-fail",
            MaxTokens = 3,
            Temperature = 0.5f,
        });

        var request = Assert.IsType<InferenceRequest>(result.Request);
        Assert.Equal(["system", "user"], request.Messages.Select(m => m.Role));
        Assert.Equal("synthetic-fail", request.Model);
        Assert.Equal(3, request.MaxTokens);
        Assert.Equal(0.5f, request.Temperature);
    }

    public static TheoryData<string, InferenceRequestBody> InvalidBodies => new()
    {
        { "prompt", new InferenceRequestBody() },
        { "prompt", new InferenceRequestBody { Prompt = "  " } },
        { "prompt", new InferenceRequestBody { Prompt = "a", Messages = [new() { Role = "user", Content = "b" }] } },
        { "messages", new InferenceRequestBody { Messages = [] } },
        { "messages[0].role", new InferenceRequestBody { Messages = [new() { Role = "robot", Content = "b" }] } },
        { "messages[1].content", new InferenceRequestBody { Messages = [new() { Role = "user", Content = "a" }, new() { Role = "user" }] } },
        { "messages[0].role", new InferenceRequestBody { Messages = [null] } },
        { "max_tokens", new InferenceRequestBody { Prompt = "a", MaxTokens = 0 } },
        { "max_tokens", new InferenceRequestBody { Prompt = "a", MaxTokens = 32_769 } },
        { "temperature", new InferenceRequestBody { Prompt = "a", Temperature = -0.1f } },
        { "temperature", new InferenceRequestBody { Prompt = "a", Temperature = float.NaN } },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public void InvalidBodiesAreRejectedNamingTheField(string field, InferenceRequestBody body)
    {
        var result = _reader.Validate(body);

        Assert.Null(result.Request);
        var fault = Assert.IsType<RequestFault>(result.Fault);
        Assert.Equal(400, fault.Status);
        Assert.Equal("invalid_request", fault.Code);
        Assert.Contains(field, fault.Errors!.Keys);
        var problem = Assert.IsType<Microsoft.AspNetCore.Http.HttpResults.ValidationProblem>(result.Problem);
        Assert.Contains(field, problem.ProblemDetails.Errors.Keys);
    }

    [Fact]
    public void UnknownModelIsNotFoundAndListsTheKnownOnes()
    {
        var result = _reader.Validate(new InferenceRequestBody { Prompt = "a", Model = "gpt-nope" });

        var fault = Assert.IsType<RequestFault>(result.Fault);
        Assert.Equal(404, fault.Status);
        Assert.Equal("model_not_found", fault.Code);
        Assert.Contains("synthetic-stall", fault.Detail);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(32_768)]
    public void MaxTokensBoundsAreInclusive(int maxTokens)
    {
        var result = _reader.Validate(new InferenceRequestBody { Prompt = "a", MaxTokens = maxTokens });

        Assert.Equal(maxTokens, Assert.IsType<InferenceRequest>(result.Request).MaxTokens);
    }
}
