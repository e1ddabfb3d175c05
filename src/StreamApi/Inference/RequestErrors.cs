using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// The validation errors of one request, by parameter; past <see cref="RequestFault.MaxErrors"/> they are only counted,
/// and every parameter and message is clipped, so no input makes the answer large.
/// </summary>
internal sealed class RequestErrors
{
    private int _omittedMessages;
    private int _omittedOthers;

    public Dictionary<string, string[]> ByParam { get; } = new(StringComparer.Ordinal);

    public int Count => ByParam.Count;

    /// <summary>Records the error; a message (<c>messages[i]</c>) reports at most one, so the count of those omitted is of messages.</summary>
    public void Add(string param, string message)
    {
        param = RequestFault.Clip(param);
        if (ByParam.ContainsKey(param))
        {
            return;
        }

        if (ByParam.Count < RequestFault.MaxErrors)
        {
            ByParam[param] = [RequestFault.Clip(message)];
        }
        else if (param.StartsWith("messages[", StringComparison.Ordinal))
        {
            _omittedMessages++;
        }
        else
        {
            _omittedOthers++;
        }
    }

    public RequestFault? ToFault()
    {
        if (ByParam.Count == 0)
        {
            return null;
        }

        var detail = string.Join(" ", ByParam.Values.SelectMany(v => v));
        if (_omittedMessages > 0)
        {
            detail += $" {_omittedMessages} more invalid messages are not listed.";
        }

        if (_omittedOthers > 0)
        {
            detail += $" {_omittedOthers} more errors are not listed.";
        }

        return new RequestFault(StatusCodes.Status400BadRequest, "Invalid request", detail, "invalid_request", ByParam);
    }
}
