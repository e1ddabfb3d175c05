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
        var (body, fault) = await reader.ReadJsonAsync(context.Request, InferenceJsonContext.Default.InferenceRequestBody, cancellationToken);
        if (fault is not null)
        {
            return Error(fault);
        }

        var read = reader.Validate(body!, InferenceRequestReader.FrontEnd.OpenAi);
        if (read.Fault is { } invalid)
        {
            return Error(invalid);
        }

        var started = await starter.StartAsync(context, read.Request!);
        var stream = body!.Stream == true;
        return started.Refusal is { } refused ? Error(refused) : new ChatCompletionResult(started.Id, read.Request!.Model, stream,
            stream && body.StreamOptions?.IncludeUsage == true, startedAt, started.Slot);
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
