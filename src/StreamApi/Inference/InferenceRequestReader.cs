using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// Reads and validates a request body, answering every client mistake with RFC 7807 problem details
/// (400, 404, 413, 415) before any stream exists.
/// </summary>
internal sealed class InferenceRequestReader(IOptionsMonitor<StreamingOptions> streaming, IOptionsMonitor<ModelCatalogOptions> catalog)
{
    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "system", "user", "assistant", "tool", "developer" };

    public async Task<ReadResult> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var (body, fault) = await ReadJsonAsync(request, InferenceJsonContext.Default.InferenceRequestBody, cancellationToken);
        return fault is not null ? new ReadResult(null, fault) : Validate(body!);
    }

    /// <summary>Reads a JSON body with the content-type and size rules every endpoint shares.</summary>
    public async Task<(T? Value, RequestFault? Fault)> ReadJsonAsync<T>(HttpRequest request, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, new RequestFault(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                "The body must be JSON, sent with 'Content-Type: application/json'.", "unsupported_media_type"));
        }

        var limit = streaming.CurrentValue.MaxRequestBodyBytes;
        if (request.ContentLength > limit)
        {
            return (null, TooLarge(limit));
        }

        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit;
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync(request.Body, type, cancellationToken);
            return value is null
                ? (null, new RequestFault(StatusCodes.Status400BadRequest, "Invalid request", "The body must be a JSON object.", "invalid_request"))
                : (value, null);
        }
        catch (JsonException ex)
        {
            return (null, new RequestFault(StatusCodes.Status400BadRequest, "Malformed JSON",
                $"The body is not valid JSON for this endpoint: {RequestFault.Clip(ex.Message)}", "invalid_json"));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit));
        }
    }

    public ReadResult Validate(InferenceRequestBody body)
    {
        var options = catalog.CurrentValue;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);

        var hasPrompt = body.Prompt is not null;
        var hasMessages = body.Messages is not null;
        List<ChatTurn>? messages = null;
        if (hasPrompt && hasMessages)
        {
            errors["prompt"] = ["Give either 'prompt' or 'messages', not both."];
        }
        else if (hasPrompt)
        {
            if (string.IsNullOrWhiteSpace(body.Prompt))
            {
                errors["prompt"] = ["'prompt' must not be empty."];
            }
            else
            {
                messages = [new ChatTurn("user", body.Prompt!)];
            }
        }
        else if (hasMessages)
        {
            messages = ValidateMessages(body.Messages!, errors);
        }
        else
        {
            errors["prompt"] = ["A 'prompt' string or a 'messages' array is required."];
        }

        var maxTokens = body.MaxTokens ?? options.DefaultMaxTokens;
        if (maxTokens is < 1 or > ModelCatalogOptions.MaxTokensUpperBound)
        {
            errors["max_tokens"] = [$"'max_tokens' must be between 1 and {ModelCatalogOptions.MaxTokensUpperBound}."];
        }

        if (body.Temperature is { } t && (float.IsNaN(t) || t is < 0 or > 2))
        {
            errors["temperature"] = ["'temperature' must be between 0 and 2."];
        }

        var stop = StopSequences.Read(body.Stop, errors);

        if (errors.Count > 0)
        {
            return new ReadResult(null, new RequestFault(StatusCodes.Status400BadRequest, "Invalid request",
                string.Join(" ", errors.Values.SelectMany(v => v)), "invalid_request", errors));
        }

        var model = string.IsNullOrEmpty(body.Model) ? options.DefaultModel : body.Model;
        if (!options.Models.ContainsKey(model))
        {
            return new ReadResult(null, new RequestFault(StatusCodes.Status404NotFound, "Unknown model",
                $"No model named '{RequestFault.Clip(model)}'. Known models: {string.Join(", ", options.Models.Keys.Order(StringComparer.Ordinal))}.", "model_not_found"));
        }

        return new ReadResult(new InferenceRequest(model, messages!, maxTokens, body.Temperature) { Stop = stop }, null);
    }

    private static List<ChatTurn>? ValidateMessages(List<ChatTurnBody?> turns, Dictionary<string, string[]> errors)
    {
        if (turns.Count == 0)
        {
            errors["messages"] = ["'messages' must hold at least one message."];
            return null;
        }

        var result = new List<ChatTurn>(turns.Count);
        var omitted = 0;
        for (var i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            var (field, error) = turn?.Role is not { } role || !Roles.Contains(role)
                ? ("role", $"messages[{i}].role must be one of: {string.Join(", ", Roles)}.")
                : turn.Content is null ? ("content", $"messages[{i}].content must be a string.") : (null, null);
            if (error is null)
            {
                result.Add(new ChatTurn(turn!.Role!, turn.Content!));
            }
            else if (errors.Count < RequestFault.MaxErrors)
            {
                errors[$"messages[{i}].{field}"] = [error];
            }
            else
            {
                omitted++;
            }
        }

        if (omitted > 0)
        {
            errors["messages"] = [$"{omitted} more invalid messages are not listed."];
        }

        return result;
    }

    private static RequestFault TooLarge(int limit) =>
        new(StatusCodes.Status413PayloadTooLarge, "Request body too large", $"The body must be at most {limit} bytes.", "request_too_large");

    /// <summary>Either a valid request or the client's mistake.</summary>
    internal readonly record struct ReadResult(InferenceRequest? Request, RequestFault? Fault)
    {
        /// <summary>The mistake as RFC 7807 problem details.</summary>
        public IResult? Problem => Fault?.ToProblem();
    }
}
