using System.Net.ServerSentEvents;
using System.Text.Json;

namespace VixAspire.LoadTest;

/// <summary>
/// Reads one SSE response with the framework's parser and checks it against the event contract (README, "Events"):
/// <c>start</c> first, token indices contiguous from 0, an <c>error</c> always followed by <c>end</c>, <c>end</c>
/// last and its <c>output_tokens</c> equal to the answer events seen (tokens, and reasoning and tool-call fragments). Times are taken as each event is parsed, which
/// is when a client could show it.
/// </summary>
internal sealed class StreamValidator(int index, long requestStarted, TimeProvider time)
{
    private enum Phase { AwaitingStart, Streaming, AfterError, Ended }

    private readonly List<TimeSpan> _gaps = [];
    private Phase _phase;
    private int _tokens;
    private long _firstToken = -1;
    private long _lastToken;
    private string? _errorCode;
    private string? _endReason;
    private int? _outputTokens;
    private int _otherAnswerEvents;
    private string? _violation;

    public async Task<StreamResult> ReadAsync(Stream body, CancellationToken cancellationToken)
    {
        var parser = SseParser.Create(body, static (_, data) => JsonSerializer.Deserialize(data, LoadTestJson.Default.SseEnvelope));
        try
        {
            await foreach (var item in parser.EnumerateAsync(cancellationToken))
            {
                if (!Accept(item.EventType, item.Data))
                {
                    break;
                }
            }
        }
        catch (JsonException)
        {
            _violation ??= FailureKinds.MalformedEvent;
        }
        catch (HttpIOException ex) when (ex.HttpRequestError == HttpRequestError.ResponseEnded)
        {
            // The connection closed mid-stream: judged below like any stream that stops before its end.
        }

        return Result();
    }

    /// <summary>Takes the next event; false when it breaks the contract (the rest of the stream is not read).</summary>
    public bool Accept(string eventType, SseEnvelope? envelope)
    {
        if (_violation is not null)
        {
            return false;
        }

        var timestamp = time.GetTimestamp();
        if (eventType is "reasoning" or "tool_call")
        {
            // Parts of the answer besides text: counted in the end's output tokens, and only between start and end.
            _otherAnswerEvents++;
            return _phase == Phase.Streaming || Violate(FailureKinds.OutOfOrder);
        }

        if (eventType is not ("start" or "token" or "error" or "end"))
        {
            // Event kinds this tool does not know are tolerated, but nothing may follow end.
            return _phase != Phase.Ended || Violate(FailureKinds.OutOfOrder);
        }

        if (envelope?.Payload is not { } payload || envelope.Type != "inference." + eventType)
        {
            return Violate(FailureKinds.MalformedEvent);
        }

        switch (eventType)
        {
            case "start" when _phase == Phase.AwaitingStart:
                _phase = Phase.Streaming;
                return true;
            case "token" when _phase == Phase.Streaming && payload.Index == _tokens:
                if (_tokens == 0)
                {
                    _firstToken = timestamp;
                }
                else
                {
                    _gaps.Add(time.GetElapsedTime(_lastToken, timestamp));
                }

                _lastToken = timestamp;
                _tokens++;
                return true;
            case "error" when _phase == Phase.Streaming:
                _errorCode = payload.Code;
                _phase = Phase.AfterError;
                return true;
            case "end" when _phase is Phase.Streaming or Phase.AfterError:
                _endReason = payload.Reason;
                _outputTokens = payload.Usage?.OutputTokens;
                _phase = Phase.Ended;
                return true;
            default:
                return Violate(FailureKinds.OutOfOrder);
        }
    }

    public StreamResult Result(bool interrupted = false)
    {
        var failure = _violation
            ?? (interrupted ? null
            : _phase != Phase.Ended ? FailureKinds.Incomplete
            : _errorCode is not null || _endReason == "error" ? FailureKinds.Error(_errorCode)
            : _outputTokens != _tokens + _otherAnswerEvents ? FailureKinds.UsageMismatch
            : null);
        var ttft = _firstToken < 0 ? (TimeSpan?)null : time.GetElapsedTime(requestStarted, _firstToken);
        return new StreamResult(index, failure, _endReason, _tokens, ttft, _gaps, time.GetElapsedTime(requestStarted), interrupted && failure is null);
    }

    /// <summary>The stream failed outside the event rules (HTTP status, exception); what arrived before still counts.</summary>
    public StreamResult Fail(string kind)
    {
        _violation ??= kind;
        return Result();
    }

    private bool Violate(string kind)
    {
        _violation = kind;
        return false;
    }
}
