using HdrHistogram;

namespace VixAspire.LoadTest;

/// <summary>
/// Gathers stream results from concurrent workers into HDR histograms (microsecond values, three
/// significant digits) and counters, and turns them into a <see cref="LoadReport"/> at any point.
/// </summary>
internal sealed class ReportBuilder(LoadTestSettings settings)
{
    // An hour: no stream lives that long (the server's limit is minutes); anything longer is clamped.
    private const long HighestMicroseconds = 3_600_000_000;

    private readonly Lock _lock = new();
    private readonly LongHistogram _timeToFirstToken = new(1, HighestMicroseconds, 3);
    private readonly LongHistogram _interTokenLatency = new(1, HighestMicroseconds, 3);
    private readonly SortedDictionary<string, int> _endReasons = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, int> _errors = new(StringComparer.Ordinal);
    private int _started;
    private int _completed;
    private int _failed;
    private int _interrupted;
    private long _tokens;

    public LoadProgress Add(StreamResult result)
    {
        lock (_lock)
        {
            _started++;
            _tokens += result.Tokens;
            if (result.TimeToFirstToken is { } ttft)
            {
                _timeToFirstToken.RecordValue(Microseconds(ttft));
            }

            foreach (var gap in result.InterTokenGaps)
            {
                _interTokenLatency.RecordValue(Microseconds(gap));
            }

            if (result.EndReason is { } reason)
            {
                Increment(_endReasons, reason);
            }

            if (result.Failure is { } failure)
            {
                _failed++;
                Increment(_errors, failure);
            }
            else if (result.Interrupted)
            {
                _interrupted++;
            }
            else
            {
                _completed++;
            }

            return new LoadProgress(_started, _failed, _tokens);
        }
    }

    public LoadReport Build(TimeSpan elapsed, bool cancelled)
    {
        lock (_lock)
        {
            var seconds = elapsed.TotalSeconds;
            var counts = new StreamCounts(settings.Streams, _started, _completed, _failed,
                _errors.GetValueOrDefault(FailureKinds.Incomplete), _interrupted, settings.Streams - _started);
            return new LoadReport(
                settings.Url.ToString(), settings.Model, settings.MaxTokens, settings.Concurrency, settings.Rate,
                Math.Round(seconds, 3), cancelled, counts, _tokens,
                PerSecond(_tokens, seconds), PerSecond(_completed, seconds),
                Summarize(_timeToFirstToken), Summarize(_interTokenLatency),
                new SortedDictionary<string, int>(_endReasons, StringComparer.Ordinal),
                new SortedDictionary<string, int>(_errors, StringComparer.Ordinal));
        }
    }

    private static LatencySummary Summarize(LongHistogram histogram) => histogram.TotalCount == 0
        ? new LatencySummary(0, 0, 0, 0, 0)
        : new LatencySummary(histogram.TotalCount,
            Milliseconds(histogram.GetValueAtPercentile(50)),
            Milliseconds(histogram.GetValueAtPercentile(90)),
            Milliseconds(histogram.GetValueAtPercentile(99)),
            Milliseconds(histogram.GetMaxValue()));

    private static long Microseconds(TimeSpan value) => Math.Clamp(value.Ticks / TimeSpan.TicksPerMicrosecond, 0, HighestMicroseconds);

    private static double Milliseconds(long microseconds) => Math.Round(microseconds / 1000.0, 3);

    private static double PerSecond(long count, double seconds) => seconds > 0 ? Math.Round(count / seconds, 1) : 0;

    private static void Increment(SortedDictionary<string, int> counts, string key) =>
        counts[key] = counts.GetValueOrDefault(key) + 1;
}
