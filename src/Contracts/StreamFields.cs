namespace VixAspire.Contracts;

/// <summary>Field names of token-stream and request-queue entries.</summary>
public static class StreamFields
{
    /// <summary>SSE event name of a token-stream entry (<see cref="EventNames"/>).</summary>
    public const string Event = "e";

    /// <summary>The ready-to-send JSON envelope of a token-stream entry.</summary>
    public const string Data = "d";

    public const string RequestId = "id";
    public const string RequestBody = "body";
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";

    /// <summary>The client whose concurrent-stream slot the request holds (<see cref="RedisKeys.ClientStreams"/>); the worker frees it at the end.</summary>
    public const string Client = "client";
}

public static class EventNames
{
    public const string Start = "start";
    public const string Token = "token";

    /// <summary>A fragment of a tool call: index, then id and name in the call's first fragment, and arguments text.</summary>
    public const string ToolCall = "tool_call";

    /// <summary>A fragment of the model's reasoning text, before (or between) its answer.</summary>
    public const string Reasoning = "reasoning";
    public const string Error = "error";
    public const string End = "end";
}

public static class EndReasons
{
    public const string Stop = "stop";
    public const string Length = "length";

    /// <summary>The model stopped to have its tool calls run.</summary>
    public const string ToolCalls = "tool_calls";

    /// <summary>The provider's content filter stopped the answer.</summary>
    public const string ContentFilter = "content_filter";
    public const string Cancelled = "cancelled";
    public const string Error = "error";
    public const string Timeout = "timeout";
    public const string MaxBytes = "max_bytes";
}

public static class ErrorCodes
{
    public const string ProviderError = "provider_error";
    public const string ProviderTimeout = "provider_timeout";

    /// <summary>Every provider of the route (and its fallbacks) failed or was skipped before the first token.</summary>
    public const string ProviderUnavailable = "provider_unavailable";
    public const string WorkerShutdown = "worker_shutdown";
    public const string WorkerLost = "worker_lost";

    /// <summary>No provider of the worker serves the request's model (its routing table differs from the API's).</summary>
    public const string ModelUnavailable = "model_unavailable";
}
