using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>A started generation, answered in OpenAI's chat-completion shape, streamed or whole.</summary>
internal sealed record ChatCompletionResult(string Id, string Model, bool Stream, bool IncludeUsage, string ClientSlot) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext) =>
        httpContext.RequestServices.GetRequiredService<ChatCompletionResponder>().RespondAsync(httpContext, this);
}

/// <summary>
/// Follows the token stream like the SSE front end (same session: attach, grace, slot) and re-shapes it:
/// <c>chat.completion.chunk</c> events then <c>data: [DONE]</c>, or one <c>chat.completion</c> object.
/// </summary>
internal sealed class ChatCompletionResponder(StreamSessions sessions, ILogger<ChatCompletionResponder> logger)
{
    public async Task RespondAsync(HttpContext context, ChatCompletionResult completion)
    {
        var cancellationToken = context.RequestAborted;
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await using var session = await sessions.OpenAsync(completion.Id, completion.ClientSlot);
        try
        {
            if (completion.Stream)
            {
                await StreamAsync(context, completion, session, created, cancellationToken);
            }
            else
            {
                await RespondWholeAsync(context, completion, session, created, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.ClientDisconnected(logger, completion.Id);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException && !context.Response.HasStarted)
        {
            Log.TailFailed(logger, ex, completion.Id);
            await OpenAiApi.Error(StatusCodes.Status503ServiceUnavailable, "The token stream could not be read; retry.", "stream_unavailable")
                .ExecuteAsync(context);
        }
    }

    private static async Task StreamAsync(HttpContext context, ChatCompletionResult completion, StreamSession session, long created, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var pipe = response.BodyWriter;
        await using var json = new Utf8JsonWriter(pipe);
        var chunk = new ChunkWriter(pipe, json, $"chatcmpl-{completion.Id}", completion.Model, created);

        chunk.Write(role: true, content: "", finishReason: null);
        await pipe.FlushAsync(cancellationToken);
        (string Code, string Message)? error = null;
        await foreach (var batch in session.TailAsync(null, new TailProgress(), cancellationToken))
        {
            if (batch.Length == 0)
            {
                SseWriter.WriteHeartbeat(pipe);
            }

            foreach (var entry in batch)
            {
                ReadOnlyMemory<byte> data = entry[StreamFields.Data];
                var name = entry[StreamFields.Event];
                if (name == EventNames.Token)
                {
                    chunk.Write(role: false, EnvelopeFields.String(data.Span, "text"u8) ?? "", finishReason: null);
                }
                else if (name == EventNames.Error)
                {
                    error = (EnvelopeFields.String(data.Span, "code"u8) ?? "provider_error", EnvelopeFields.String(data.Span, "message"u8) ?? "");
                }
                else if (name == EventNames.End)
                {
                    await session.MarkEndedAsync();
                    if (error is { } failed)
                    {
                        chunk.WriteError(failed.Code, failed.Message);
                    }
                    else
                    {
                        chunk.Write(role: false, content: null, FinishReason(EnvelopeFields.String(data.Span, "reason"u8)));
                    }

                    if (completion.IncludeUsage)
                    {
                        chunk.WriteUsage(EnvelopeFields.Int(data.Span, "output_tokens"u8));
                    }

                    pipe.Write("data: [DONE]\n\n"u8);
                }
            }

            await pipe.FlushAsync(cancellationToken);
        }
    }

    private static async Task RespondWholeAsync(HttpContext context, ChatCompletionResult completion, StreamSession session, long created, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        await foreach (var batch in session.TailAsync(null, new TailProgress(), cancellationToken))
        {
            foreach (var entry in batch)
            {
                ReadOnlyMemory<byte> data = entry[StreamFields.Data];
                var name = entry[StreamFields.Event];
                if (name == EventNames.Token)
                {
                    text.Append(EnvelopeFields.String(data.Span, "text"u8));
                }
                else if (name == EventNames.Error)
                {
                    await session.MarkEndedAsync();
                    var code = EnvelopeFields.String(data.Span, "code"u8) ?? "provider_error";
                    // A failed generation is the upstream's fault, not the client's: a gateway error, never a 500.
                    var status = code == ErrorCodes.ProviderTimeout ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status502BadGateway;
                    await OpenAiApi.Error(status, EnvelopeFields.String(data.Span, "message"u8) ?? "The generation failed.", code).ExecuteAsync(context);
                    return;
                }
                else if (name == EventNames.End)
                {
                    await session.MarkEndedAsync();
                    await WriteCompletionAsync(context.Response, completion, created, text.ToString(),
                        FinishReason(EnvelopeFields.String(data.Span, "reason"u8)), EnvelopeFields.Int(data.Span, "output_tokens"u8), cancellationToken);
                    return;
                }
            }
        }
    }

    private static async Task WriteCompletionAsync(HttpResponse response, ChatCompletionResult completion, long created, string text,
        string finishReason, int outputTokens, CancellationToken cancellationToken)
    {
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("id"u8, $"chatcmpl-{completion.Id}");
        json.WriteString("object"u8, "chat.completion"u8);
        json.WriteNumber("created"u8, created);
        json.WriteString("model"u8, completion.Model);
        json.WriteStartArray("choices"u8);
        json.WriteStartObject();
        json.WriteNumber("index"u8, 0);
        json.WriteStartObject("message"u8);
        json.WriteString("role"u8, "assistant"u8);
        json.WriteString("content"u8, text);
        json.WriteEndObject();
        json.WriteNull("logprobs"u8);
        json.WriteString("finish_reason"u8, finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        ChunkWriter.WriteUsageObject(json, outputTokens);
        json.WriteEndObject();
        await json.FlushAsync(cancellationToken);
    }

    /// <summary>OpenAI knows stop and length; a cap or deadline cut the text short (length), a cancel stopped it (stop).</summary>
    private static string FinishReason(string? endReason) => endReason switch
    {
        EndReasons.Length or EndReasons.MaxBytes or EndReasons.Timeout => "length",
        _ => "stop",
    };

    /// <summary>Writes <c>data: {chat.completion.chunk}</c> lines straight into the response pipe.</summary>
    private sealed class ChunkWriter(PipeWriter pipe, Utf8JsonWriter json, string id, string model, long created)
    {
        public void Write(bool role, string? content, string? finishReason)
        {
            Begin();
            json.WriteStartArray("choices"u8);
            json.WriteStartObject();
            json.WriteNumber("index"u8, 0);
            json.WriteStartObject("delta"u8);
            if (role)
            {
                json.WriteString("role"u8, "assistant"u8);
            }

            if (content is not null)
            {
                // Decoded from an envelope the worker already sanitised: valid UTF-16, nothing to repair per token.
                json.WriteString("content"u8, content);
            }

            json.WriteEndObject();
            json.WriteNull("logprobs"u8);
            if (finishReason is null)
            {
                json.WriteNull("finish_reason"u8);
            }
            else
            {
                json.WriteString("finish_reason"u8, finishReason);
            }

            json.WriteEndObject();
            json.WriteEndArray();
            End();
        }

        public void WriteUsage(int outputTokens)
        {
            Begin();
            json.WriteStartArray("choices"u8);
            json.WriteEndArray();
            WriteUsageObject(json, outputTokens);
            End();
        }

        /// <summary>Mid-stream failures, as OpenAI-compatible servers send them: a data line holding an error object.</summary>
        public void WriteError(string code, string message)
        {
            pipe.Write("data: "u8);
            json.Reset(pipe);
            json.WriteStartObject();
            json.WriteStartObject("error"u8);
            json.WriteString("message"u8, message);
            json.WriteString("type"u8, "server_error"u8);
            json.WriteNull("param"u8);
            json.WriteString("code"u8, code);
            json.WriteEndObject();
            json.WriteEndObject();
            json.Flush();
            pipe.Write("\n\n"u8);
        }

        /// <summary>Prompt tokens are not counted by every provider; VixAspire reports the output it streamed.</summary>
        public static void WriteUsageObject(Utf8JsonWriter json, int outputTokens)
        {
            json.WriteStartObject("usage"u8);
            json.WriteNumber("prompt_tokens"u8, 0);
            json.WriteNumber("completion_tokens"u8, outputTokens);
            json.WriteNumber("total_tokens"u8, outputTokens);
            json.WriteEndObject();
        }

        private void Begin()
        {
            pipe.Write("data: "u8);
            json.Reset(pipe);
            json.WriteStartObject();
            json.WriteString("id"u8, id);
            json.WriteString("object"u8, "chat.completion.chunk"u8);
            json.WriteNumber("created"u8, created);
            json.WriteString("model"u8, model);
        }

        private void End()
        {
            json.WriteEndObject();
            json.Flush();
            pipe.Write("\n\n"u8);
        }
    }
}
