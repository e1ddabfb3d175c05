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
            return (null, BodyJson.Fault(ex));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit));
        }
    }

    /// <summary>
    /// The one validation of every front end's body: each field is carried into the <see cref="InferenceRequest"/>,
    /// honoured here, or refused by name (<see cref="RefusedFields"/>); nothing is dropped.
    /// </summary>
    public ReadResult Validate(InferenceRequestBody body, FrontEnd frontEnd = FrontEnd.Inference)
    {
        var options = catalog.CurrentValue;
        var errors = new RequestErrors();

        var messages = ReadPromptOrMessages(body, frontEnd, errors);
        ReadStreaming(body, frontEnd, errors);
        RefusedFields.Check(body, errors);

        var maxTokens = ReadMaxTokens(body, options.DefaultMaxTokens, errors);
        var temperature = InRange(body.Temperature, "temperature", 0, 2, errors);
        var topP = InRange(body.TopP, "top_p", 0, 1, errors);
        var frequencyPenalty = InRange(body.FrequencyPenalty, "frequency_penalty", -2, 2, errors);
        var presencePenalty = InRange(body.PresencePenalty, "presence_penalty", -2, 2, errors);
        var stop = StopSequences.Read(body.Stop, errors.ByParam);
        var tools = ChatTools.ReadTools(body.Tools, errors);
        var toolChoice = ChatTools.ReadToolChoice(body.ToolChoice, tools, errors);
        var parallelToolCalls = ChatTools.ReadParallelToolCalls(body.ParallelToolCalls, tools, errors);
        var responseFormat = ChatTools.ReadResponseFormat(body.ResponseFormat, errors);
        if (body.ReasoningEffort is { } effort && !ReasoningEfforts.Contains(effort))
        {
            errors.Add("reasoning_effort", $"'reasoning_effort' must be one of: {string.Join(", ", ReasoningEfforts)}.");
        }

        CheckMetadata(body.Metadata, errors);

        if (errors.ToFault() is { } invalid)
        {
            return new ReadResult(null, invalid);
        }

        var model = string.IsNullOrEmpty(body.Model) ? options.DefaultModel : body.Model;
        if (!options.Models.ContainsKey(model))
        {
            return new ReadResult(null, new RequestFault(StatusCodes.Status404NotFound, "Unknown model",
                $"No model named '{RequestFault.Clip(model)}'. Known models: {string.Join(", ", options.Models.Keys.Order(StringComparer.Ordinal))}.", "model_not_found"));
        }

        return new ReadResult(new InferenceRequest(model, messages!, maxTokens, temperature)
        {
            TopP = topP,
            FrequencyPenalty = frequencyPenalty,
            PresencePenalty = presencePenalty,
            Seed = body.Seed,
            Stop = stop,
            Tools = tools,
            ToolChoice = toolChoice,
            ParallelToolCalls = parallelToolCalls,
            ResponseFormat = responseFormat,
            ReasoningEffort = body.ReasoningEffort,
            User = body.User,
            Metadata = body.Metadata is { Count: > 0 } metadata ? metadata : null,
        }, null);
    }

    private static List<ChatTurn>? ReadPromptOrMessages(InferenceRequestBody body, FrontEnd frontEnd, RequestErrors errors)
    {
        if (body.Prompt is not null && frontEnd == FrontEnd.OpenAi)
        {
            errors.Add("prompt", "Unrecognized request argument supplied: prompt");
            return null;
        }

        switch (body.Prompt, body.Messages)
        {
            case ({ }, { }):
                errors.Add("prompt", "Give either 'prompt' or 'messages', not both.");
                return null;
            case ({ } prompt, null) when string.IsNullOrWhiteSpace(prompt):
                errors.Add("prompt", "'prompt' must not be empty.");
                return null;
            case ({ } prompt, null):
                return [new ChatTurn(ChatMessages.User, prompt)];
            case (null, { } messages):
                return ChatMessages.Read(messages, errors);
            default:
                errors.Add(frontEnd == FrontEnd.OpenAi ? "messages" : "prompt", frontEnd == FrontEnd.OpenAi
                    ? "A 'messages' array is required."
                    : "A 'prompt' string or a 'messages' array is required.");
                return null;
        }
    }

    /// <summary><c>/infer/stream</c> and the WebSocket always stream, and always report usage in <c>end</c>.</summary>
    private static void ReadStreaming(InferenceRequestBody body, FrontEnd frontEnd, RequestErrors errors)
    {
        if (frontEnd == FrontEnd.Inference && body.Stream == false)
        {
            errors.Add("stream", "This endpoint always streams: 'stream' may only be true (use POST /v1/chat/completions for a whole answer).");
        }

        if (body.StreamOptions is { } streamOptions)
        {
            if (frontEnd == FrontEnd.OpenAi && body.Stream != true)
            {
                errors.Add("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            }

            if (streamOptions.IncludeObfuscation == true)
            {
                errors.Add("stream_options.include_obfuscation", "'stream_options.include_obfuscation' is not supported by VixAspire; only false is accepted.");
            }
        }
    }

    private static int ReadMaxTokens(InferenceRequestBody body, int defaultMaxTokens, RequestErrors errors)
    {
        var (field, value) = body.MaxCompletionTokens is { } completion ? ("max_completion_tokens", completion) : ("max_tokens", body.MaxTokens ?? defaultMaxTokens);
        if (body.MaxTokens is { } legacy && body.MaxCompletionTokens is { } newer && legacy != newer)
        {
            errors.Add("max_tokens", "Give 'max_tokens' or 'max_completion_tokens', not both with different values.");
        }
        else if (value is < 1 or > ModelCatalogOptions.MaxTokensUpperBound)
        {
            errors.Add(field, $"'{field}' must be between 1 and {ModelCatalogOptions.MaxTokensUpperBound}.");
        }

        return value;
    }

    private static float? InRange(float? value, string field, float min, float max, RequestErrors errors)
    {
        if (value is { } v && (float.IsNaN(v) || v < min || v > max))
        {
            errors.Add(field, $"'{field}' must be between {min} and {max}.");
        }

        return value;
    }

    /// <summary>OpenAI's limits: 16 pairs, keys up to 64 characters, values up to 512.</summary>
    private static void CheckMetadata(Dictionary<string, string>? metadata, RequestErrors errors)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.Count > MaxMetadataPairs)
        {
            errors.Add("metadata", $"'metadata' may hold at most {MaxMetadataPairs} pairs.");
        }
        else if (metadata.Keys.Any(k => k.Length > MaxMetadataKeyChars))
        {
            errors.Add("metadata", $"'metadata' keys may be at most {MaxMetadataKeyChars} characters.");
        }
        else if (metadata.Values.Any(v => v.Length > MaxMetadataValueChars))
        {
            errors.Add("metadata", $"'metadata' values may be at most {MaxMetadataValueChars} characters.");
        }
    }

    private const int MaxMetadataPairs = 16;
    private const int MaxMetadataKeyChars = 64;
    private const int MaxMetadataValueChars = 512;

    /// <summary>OpenAI's values (openai-node's <c>ReasoningEffort</c>).</summary>
    private static readonly string[] ReasoningEfforts = ["none", "minimal", "low", "medium", "high", "xhigh", "max"];

    private static RequestFault TooLarge(int limit) =>
        new(StatusCodes.Status413PayloadTooLarge, "Request body too large", $"The body must be at most {limit} bytes.", "request_too_large");

    /// <summary>Which front end took the body: <c>/v1</c> has no <c>prompt</c>; <c>/infer</c> and the WebSocket always stream.</summary>
    public enum FrontEnd
    {
        Inference,
        OpenAi,
    }

    /// <summary>Either a valid request or the client's mistake.</summary>
    internal readonly record struct ReadResult(InferenceRequest? Request, RequestFault? Fault)
    {
        /// <summary>The mistake as RFC 7807 problem details.</summary>
        public IResult? Problem => Fault?.ToProblem();
    }
}
