using System.Text.Json;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>OpenAI's chat completion without <c>stream</c>: the answer gathered until the end, then one <c>chat.completion</c> object or an error.</summary>
internal static class ChatCompletionWhole
{
    public static async Task RespondAsync(HttpContext context, ChatCompletionResult completion, IAsyncEnumerable<StreamBatch> batches)
    {
        var cancellationToken = context.RequestAborted;
        var answer = new GatheredAnswer();
        GenerationError? error = null;
        try
        {
            await foreach (var batch in batches.WithCancellation(cancellationToken))
            {
                foreach (var item in batch)
                {
                    switch (item.Kind)
                    {
                        case StreamItemKind.Token or StreamItemKind.Reasoning or StreamItemKind.ToolCall:
                            answer.Add(item);
                            break;
                        case StreamItemKind.Error:
                            error = GenerationError.Read(item.Envelope.Span);
                            break;
                        case StreamItemKind.End when error is { } failed:
                            await OpenAiApi.Error(failed.Status, failed.Message, failed.Code).ExecuteAsync(context);
                            return;
                        case StreamItemKind.End:
                            await WriteAsync(context.Response, completion, answer, item.Envelope, cancellationToken);
                            return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client left; the follower has detached it.
            return;
        }

        // No end: the host is stopping. The generation goes on for the grace, but this answer cannot be resumed.
        context.Response.Headers.RetryAfter = RequestFault.RetryAfterSeconds;
        await OpenAiApi.Error(StatusCodes.Status503ServiceUnavailable, "The server is restarting; send the request again.", "server_restarting")
            .ExecuteAsync(context);
    }

    private static async Task WriteAsync(HttpResponse response, ChatCompletionResult completion, GatheredAnswer answer, ReadOnlyMemory<byte> end,
        CancellationToken cancellationToken)
    {
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("id"u8, completion.CompletionId);
        json.WriteString("object"u8, "chat.completion"u8);
        json.WriteNumber("created"u8, completion.Created);
        json.WriteString("model"u8, completion.Model);
        json.WriteStartArray("choices"u8);
        json.WriteStartObject();
        json.WriteNumber("index"u8, 0);
        answer.WriteMessage(json);
        json.WriteNull("logprobs"u8);
        json.WriteString("finish_reason"u8, ChatCompletionResult.FinishReason(end.Span));
        json.WriteEndObject();
        json.WriteEndArray();
        ChatCompletionResult.WriteUsage(json, end.Span);
        json.WriteEndObject();
        await json.FlushAsync(cancellationToken);
    }
}
