using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>
/// A started generation, answered in OpenAI's chat-completion shape: streamed as <see cref="ChatCompletionChunks"/>,
/// or whole as <see cref="ChatCompletionWhole"/>. Both follow the token stream like the SSE front end.
/// </summary>
/// <param name="Slot">The client's concurrent-stream slot this response holds.</param>
internal sealed record ChatCompletionResult(string Id, string Model, bool Stream, bool IncludeUsage, long StartTimestamp, StreamSlot? Slot) : IResult
{
    public string CompletionId { get; } = $"chatcmpl-{Id}";

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        await using (Slot)
        {
            var follower = httpContext.RequestServices.GetRequiredService<StreamFollower>();
            var batches = follower.FollowAsync(Id, afterId: null, StartTimestamp, Slot, httpContext.RequestAborted);
            if (Stream)
            {
                await using var json = new Utf8JsonWriter(httpContext.Response.BodyWriter);
                await SseWriter.WriteAsync(httpContext, batches, new ChatCompletionChunks(this, json).Write);
            }
            else
            {
                await ChatCompletionWhole.RespondAsync(httpContext, this, batches);
            }
        }
    }

    /// <summary>
    /// OpenAI's finish reasons: tool calls and the content filter as the provider said; a cap or deadline cut the
    /// answer short (length), a cancel stopped it (stop).
    /// </summary>
    public static string FinishReason(ReadOnlySpan<byte> endEnvelope) => EnvelopeFields.String(endEnvelope, "reason"u8) switch
    {
        EndReasons.Length or EndReasons.MaxBytes or EndReasons.Timeout => "length",
        EndReasons.ToolCalls => "tool_calls",
        EndReasons.ContentFilter => "content_filter",
        _ => "stop",
    };

    /// <summary>Prompt tokens as the provider reported them (0 when it did not); output as reported, else as VixAspire counted it.</summary>
    public static void WriteUsage(Utf8JsonWriter json, ReadOnlySpan<byte> endEnvelope)
    {
        var inputTokens = EnvelopeFields.Int(endEnvelope, "input_tokens"u8);
        var outputTokens = EnvelopeFields.Int(endEnvelope, "output_tokens"u8);
        json.WriteStartObject("usage"u8);
        json.WriteNumber("prompt_tokens"u8, inputTokens);
        json.WriteNumber("completion_tokens"u8, outputTokens);
        json.WriteNumber("total_tokens"u8, (long)inputTokens + outputTokens);
        json.WriteEndObject();
    }
}

/// <summary>Why a generation failed, read from an <c>error</c> envelope (the worker's, or the API's for a lost stream).</summary>
internal readonly record struct GenerationError(string Code, string Message)
{
    public static GenerationError Read(ReadOnlySpan<byte> envelope) =>
        new(EnvelopeFields.String(envelope, "code"u8) ?? ErrorCodes.ProviderError, EnvelopeFields.String(envelope, "message"u8) ?? "The generation failed.");

    /// <summary>The upstream's fault, not the client's: a gateway error, never a 500 (503 when the API cannot read the stream).</summary>
    public int Status => Code switch
    {
        ErrorCodes.ProviderTimeout => StatusCodes.Status504GatewayTimeout,
        "stream_unavailable" => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status502BadGateway,
    };
}
