namespace VixAspire.LoadTest;

/// <summary>The figures of one run, for the table and, unchanged, for the JSON report.</summary>
internal sealed record LoadReport(
    string Url,
    string Model,
    int MaxTokens,
    int Concurrency,
    double Rate,
    double ElapsedSeconds,
    bool Cancelled,
    StreamCounts Streams,
    long Tokens,
    double TokensPerSecond,
    double StreamsPerSecond,
    LatencySummary TimeToFirstTokenMs,
    LatencySummary InterTokenLatencyMs,
    IReadOnlyDictionary<string, int> EndReasons,
    IReadOnlyDictionary<string, int> Errors)
{
    /// <summary>Every stream that started ended complete and in order, and none was cut short by the user.</summary>
    public bool AllCompleted => Streams.Started > 0 && Streams.Completed == Streams.Started;
}

/// <summary>
/// <see cref="Started"/> = <see cref="Completed"/> + <see cref="Failed"/> + <see cref="Interrupted"/>;
/// <see cref="Incomplete"/> is the part of <see cref="Failed"/> whose connection ended without <c>end</c>.
/// </summary>
internal sealed record StreamCounts(int Requested, int Started, int Completed, int Failed, int Incomplete, int Interrupted, int NotStarted);

internal sealed record LatencySummary(long Count, double P50, double P90, double P99, double Max);

/// <summary>Counts so far, for live progress.</summary>
internal readonly record struct LoadProgress(int Finished, int Failed, long Tokens);
