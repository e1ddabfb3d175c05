using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Telemetry;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The services' Polly telemetry: a Redis call that goes through at once is not logged (Polly would log every attempt,
/// one line per read on the hot path), while a retry still is.
/// </summary>
public sealed class ResilienceTelemetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CallsThatGoThroughAreNotLoggedButRetriesAre()
    {
        var quiet = new Records();
        var pipeline = Pipeline(ResilienceTelemetry.Quiet(new TelemetryOptions { LoggerFactory = Factory(quiet) }));
        var loud = new Records();
        var unconfigured = Pipeline(new TelemetryOptions { LoggerFactory = Factory(loud) });

        for (var i = 0; i < 100; i++)
        {
            await pipeline.ExecuteAsync(static _ => ValueTask.CompletedTask, Ct);
            await unconfigured.ExecuteAsync(static _ => ValueTask.CompletedTask, Ct);
        }

        Assert.Empty(quiet.All);
        Assert.True(loud.All.Count >= 100, $"Polly's own default logs each attempt ({loud.All.Count} records)");

        var calls = 0;
        await pipeline.ExecuteAsync(_ => ++calls == 1 ? throw new TimeoutException("blip") : ValueTask.CompletedTask, Ct);

        Assert.Equal(2, calls);
        Assert.Contains(quiet.All, r => r.Level == LogLevel.Warning);
    }

    private static ResiliencePipeline Pipeline(TelemetryOptions telemetry) => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions { ShouldHandle = new PredicateBuilder().Handle<TimeoutException>(), Delay = TimeSpan.Zero, MaxRetryAttempts = 2 })
        .ConfigureTelemetry(telemetry)
        .Build();

    private static ILoggerFactory Factory(Records records) =>
        // As the services log: information and above; like every real provider, nothing at level None.
        LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Information).AddProvider(records));

    private sealed class Records : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Message)> _records = new();

        public ConcurrentQueue<(LogLevel Level, string Message)> All => _records;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                _records.Enqueue((logLevel, formatter(state, exception)));
            }
        }

        public void Dispose()
        {
        }
    }
}
