using Polly.Telemetry;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Polly's telemetry as every service configures it: retries, failures and circuit changes are logged and metered,
/// but not the report of every execution that went through at once. Redis calls on the hot path (the API's reads,
/// the worker's appends) run through retry pipelines, and Polly logs each attempt at information level: at 100
/// streams that was 1,800 console lines a second from each API replica (found with dotnet-trace, see
/// docs/benchmarks.md).
/// </summary>
public static class ResilienceTelemetry
{
    /// <summary>Polly's name for the report of one attempt of a retry (information when it went through, warning when handled).</summary>
    private const string ExecutionAttempt = "ExecutionAttempt";

    /// <summary>
    /// Drops the reports of executions and attempts that went through (debug-level events, and information-level
    /// attempts: Polly logs every attempt, one line per Redis read); keeps retries, handled failures and the rest.
    /// </summary>
    public static TelemetryOptions Quiet(TelemetryOptions options)
    {
        options.SeverityProvider = static args => args.Event switch
        {
            { Severity: ResilienceEventSeverity.Debug } or { EventName: ExecutionAttempt, Severity: ResilienceEventSeverity.Information } => ResilienceEventSeverity.None,
            var e => e.Severity,
        };
        return options;
    }
}
