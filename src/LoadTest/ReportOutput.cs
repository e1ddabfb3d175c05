using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace VixAspire.LoadTest;

/// <summary>The report as a table for people and as JSON for machines.</summary>
internal static class ReportOutput
{
    public static void WriteTable(IAnsiConsole console, LoadReport report)
    {
        var streams = report.Streams;
        var summary = new Table().Border(TableBorder.Rounded).HideHeaders()
            .AddColumn("figure").AddColumn("value")
            .AddRow("streams", $"{streams.Started} started of {streams.Requested}, {streams.NotStarted} not started")
            .AddRow("complete", Count(streams.Completed))
            .AddRow("failed", $"{Count(streams.Failed)} ({Count(streams.Incomplete)} incomplete)")
            .AddRow("interrupted", Count(streams.Interrupted))
            .AddRow("elapsed", $"{Number(report.ElapsedSeconds)} s{(report.Cancelled ? " (cancelled)" : "")}")
            .AddRow("throughput", $"{Number(report.TokensPerSecond)} tokens/s, {Number(report.StreamsPerSecond)} streams/s")
            .AddRow("tokens", Count(report.Tokens))
            .AddRow("end reasons", Counts(report.EndReasons))
            .AddRow("errors", Counts(report.Errors));

        var latency = new Table().Border(TableBorder.Rounded)
            .AddColumn("latency (ms)").AddColumn(new TableColumn("p50").RightAligned()).AddColumn(new TableColumn("p90").RightAligned())
            .AddColumn(new TableColumn("p99").RightAligned()).AddColumn(new TableColumn("max").RightAligned()).AddColumn(new TableColumn("count").RightAligned());
        AddLatency(latency, "time to first token", report.TimeToFirstTokenMs);
        AddLatency(latency, "inter-token", report.InterTokenLatencyMs);

        console.Write(summary);
        console.Write(latency);
    }

    /// <summary>Writes the JSON report to a file, or to stdout for <c>-</c>.</summary>
    public static async Task WriteJsonAsync(string path, LoadReport report)
    {
        if (path == "-")
        {
            await using var stdout = Console.OpenStandardOutput();
            await JsonSerializer.SerializeAsync(stdout, report, LoadTestJson.Default.LoadReport);
            await stdout.WriteAsync("\n"u8.ToArray());
            return;
        }

        await using var file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, report, LoadTestJson.Default.LoadReport);
    }

    private static void AddLatency(Table table, string name, LatencySummary summary) =>
        table.AddRow(name, Number(summary.P50), Number(summary.P90), Number(summary.P99), Number(summary.Max),
            Count(summary.Count));

    private static string Counts(IReadOnlyDictionary<string, int> counts) => counts.Count == 0
        ? "none"
        : Markup.Escape(string.Join(", ", counts.Select(c => $"{c.Key} {c.Value}")));

    private static string Count(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);
}
