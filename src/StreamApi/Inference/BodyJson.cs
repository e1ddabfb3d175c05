using System.Text.Json;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// Reads the request body, however it arrived (an HTTP body, a WebSocket payload), and turns a deserialization failure
/// into a 400 that names the parameter: the exception's JSON path is the parameter, in OpenAI's spelling.
/// </summary>
internal static class BodyJson
{
    /// <summary>Deepest nesting the reader takes: twice the deepest schema accepted, so the schema's own check names it first.</summary>
    public const int MaxDepth = 2 * ChatTools.MaxSchemaDepth;

    /// <summary>Reads a WebSocket payload; the message itself was JSON, so a payload that does not fit is an invalid request.</summary>
    public static (InferenceRequestBody? Body, RequestFault? Fault) Read(JsonElement payload)
    {
        try
        {
            return (payload.Deserialize(InferenceJsonContext.Default.InferenceRequestBody), null);
        }
        catch (JsonException ex)
        {
            var fault = Fault(ex);
            return (null, fault.Code == InvalidJson ? fault with { Code = "invalid_request" } : fault);
        }
    }

    private const string InvalidJson = "invalid_json";

    public static RequestFault Fault(JsonException ex)
    {
        var param = Param(ex.Path);
        if (ex.Message.StartsWith("The JSON property ", StringComparison.Ordinal) && ex.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            return Invalid(param, $"Unrecognized request argument supplied: {param}", "unknown_parameter");
        }

        if (ex.InnerException is JsonException && ex.Message.Contains("maximum configured depth", StringComparison.Ordinal))
        {
            return Invalid(param, $"'{param}' is nested too deeply: a JSON schema may nest at most {ChatTools.MaxSchemaDepth} levels.", "invalid_request");
        }

        var detail = $"The body is not valid JSON for this endpoint: {RequestFault.Clip(ex.Message)}";
        return param.Length == 0
            ? new RequestFault(StatusCodes.Status400BadRequest, "Malformed JSON", detail, InvalidJson)
            : new RequestFault(StatusCodes.Status400BadRequest, "Malformed JSON", detail, InvalidJson,
                new Dictionary<string, string[]>(StringComparer.Ordinal) { [param] = [$"'{param}' has an invalid value or type."] });
    }

    private static RequestFault Invalid(string param, string message, string code) =>
        new(StatusCodes.Status400BadRequest, "Invalid request", message, code,
            new Dictionary<string, string[]>(StringComparer.Ordinal) { [param] = [message] });

    /// <summary><c>$.messages[0].content</c> becomes <c>messages[0].content</c>, clipped, since a property name is the client's text.</summary>
    private static string Param(string? path) => RequestFault.Clip(path switch
    {
        null or "$" => "",
        _ when path.StartsWith("$.", StringComparison.Ordinal) => path[2..],
        _ when path.StartsWith('$') => path[1..],
        _ => path,
    });
}
