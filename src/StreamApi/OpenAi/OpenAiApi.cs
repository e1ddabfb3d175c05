using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>
/// OpenAI-compatible chat completions over the same path as <c>/infer/stream</c> (queue, worker, token stream),
/// so existing OpenAI clients work unmodified. Errors use OpenAI's error object.
/// </summary>
public static class OpenAiApi
{
    public static RouteGroupBuilder MapOpenAiApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("OpenAI");
        group.MapPost("/chat/completions", ChatCompletionsAsync).RefuseWhileRedisIsUnreachable(Error);
        group.MapGet("/models", ListModels);
        return group;
    }

    internal static async Task<IResult> ChatCompletionsAsync(
        HttpContext context,
        InferenceRequestReader reader,
        StreamStarter starter,
        CancellationToken cancellationToken)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var (body, fault) = await reader.ReadJsonAsync(context.Request, OpenAiJsonContext.Default.ChatCompletionRequest, cancellationToken);
        if (fault is not null)
        {
            return Error(fault);
        }

        if (body!.N is > 1)
        {
            return Error(StatusCodes.Status400BadRequest, "Only n=1 is supported.", "invalid_request", "n");
        }

        var messages = ToTurns(body.Messages, out var contentFault);
        if (contentFault is not null)
        {
            return Error(contentFault);
        }

        var read = reader.Validate(new InferenceRequestBody
        {
            Messages = messages,
            Model = body.Model,
            MaxTokens = body.MaxCompletionTokens ?? body.MaxTokens,
            Temperature = body.Temperature,
            Stop = body.Stop,
        });
        if (read.Fault is { } invalid)
        {
            return Error(invalid);
        }

        var started = await starter.StartAsync(context, read.Request!);
        return started.Refusal is { } refused ? Error(refused) : new ChatCompletionResult(started.Id, read.Request!.Model, body.Stream == true,
            body.Stream == true && body.StreamOptions?.IncludeUsage == true, startedAt, started.Slot);
    }

    internal static IResult ListModels(IOptionsMonitor<ModelCatalogOptions> catalog) =>
        TypedResults.Stream(async stream =>
        {
            await using var json = new Utf8JsonWriter(stream);
            json.WriteStartObject();
            json.WriteString("object"u8, "list"u8);
            json.WriteStartArray("data"u8);
            foreach (var model in catalog.CurrentValue.Models.Keys.Order(StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("id"u8, model);
                json.WriteString("object"u8, "model"u8);
                json.WriteNumber("created"u8, 0);
                json.WriteString("owned_by"u8, "vixaspire"u8);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }, "application/json");

    /// <summary>OpenAI's content may be a string or an array of parts; the text parts are what the providers take.</summary>
    private static List<ChatTurnBody?>? ToTurns(List<ChatCompletionMessage?>? messages, out RequestFault? fault)
    {
        fault = null;
        if (messages is null)
        {
            return null;
        }

        var turns = new List<ChatTurnBody?>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            string? text;
            try
            {
                text = TextOf(message, i, out fault);
            }
            catch (InvalidOperationException)
            {
                text = null;
                // Content is kept as raw JSON until here, so its strings are first decoded now: bytes that are not
                // UTF-8 are the client's mistake.
                fault = new RequestFault(StatusCodes.Status400BadRequest, "Invalid request",
                    $"messages[{i}].content is not valid UTF-8.", "invalid_request");
            }

            if (fault is not null)
            {
                return null;
            }

            turns.Add(message is null ? null : new ChatTurnBody { Role = message.Role, Content = text });
        }

        return turns;
    }

    private static string? TextOf(ChatCompletionMessage? message, int i, out RequestFault? fault)
    {
        fault = null;
        switch (message?.Content)
        {
            case { ValueKind: JsonValueKind.String } content:
                return content.GetString();
            case { ValueKind: JsonValueKind.Array } parts:
                return string.Concat(parts.EnumerateArray()
                    .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t) && t.ValueEquals("text"u8))
                    .Select(p => p.TryGetProperty("text", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : ""));
            case null or { ValueKind: JsonValueKind.Null } when message?.Role == "assistant":
                return "";
            case { } other when other.ValueKind != JsonValueKind.Null:
                fault = new RequestFault(StatusCodes.Status400BadRequest, "Invalid request",
                    $"messages[{i}].content must be a string or an array of content parts.", "invalid_request");
                return null;
            default:
                return null;
        }
    }

    internal static IResult Error(RequestFault fault) =>
        Error(fault.Status, fault.Detail, fault.Code, fault.Errors?.Keys.FirstOrDefault());

    internal static IResult Error(int status, string message, string code, string? param = null) =>
        TypedResults.Json(new OpenAiError(new OpenAiErrorBody(message, ErrorType(status), param, code)),
            OpenAiErrorJsonContext.Default.OpenAiError, statusCode: status);

    internal static string ErrorType(int status) => status switch
    {
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}
