namespace VixAspire.LoadTest;

/// <summary>
/// One stream as the client saw it. <see cref="Failure"/> is null for a stream that was complete and in
/// order; <see cref="Interrupted"/> marks one the user stopped (Ctrl+C), which is not a failure of the system.
/// </summary>
internal sealed record StreamResult(
    int Index,
    string? Failure,
    string? EndReason,
    int Tokens,
    TimeSpan? TimeToFirstToken,
    IReadOnlyList<TimeSpan> InterTokenGaps,
    TimeSpan Elapsed,
    bool Interrupted = false)
{
    public bool Completed => Failure is null && !Interrupted;
}

/// <summary>The failure kinds a report counts; <c>http_{status}</c>, <c>error_{code}</c> and <c>exception_{type}</c> are built from these prefixes.</summary>
internal static class FailureKinds
{
    public const string Incomplete = "incomplete";
    public const string OutOfOrder = "out_of_order";
    public const string MalformedEvent = "malformed_event";
    public const string UsageMismatch = "usage_mismatch";
    public const string NotEventStream = "not_event_stream";

    public static string Http(int status) => $"http_{status}";

    public static string Error(string? code) => $"error_{(string.IsNullOrEmpty(code) ? "unknown" : code)}";

    public static string Exception(Exception exception) => $"exception_{exception.GetType().Name}";
}
