using System.Text;
using System.Text.Json;
using Spectre.Console;
using VixAspire.LoadTest;

namespace VixAspire.IntegrationTests;

/// <summary>The load tool's checks of one stream, fed SSE text as the gateway would send it.</summary>
public sealed class LoadTestStreamCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Start = "id: 1-0\nevent: start\ndata: {\"type\":\"inference.start\",\"payload\":{\"id\":\"abc\",\"model\":\"synthetic\"}}\n\n";

    private static string Token(int index) =>
        $"id: {index + 2}-0\nevent: token\ndata: {{\"type\":\"inference.token\",\"payload\":{{\"text\":\" w{index}\",\"index\":{index}}}}}\n\n";

    private static string Error(string code) =>
        $"id: 90-0\nevent: error\ndata: {{\"type\":\"inference.error\",\"payload\":{{\"code\":\"{code}\",\"message\":\"boom\",\"retryable\":false}}}}\n\n";

    private static string End(string reason, int outputTokens) =>
        $"id: 99-0\nevent: end\ndata: {{\"type\":\"inference.end\",\"payload\":{{\"reason\":\"{reason}\",\"usage\":{{\"output_tokens\":{outputTokens}}}}}}}\n\n";

    private static async Task<StreamResult> CheckAsync(string sse)
    {
        var validator = new StreamValidator(7, TimeProvider.System.GetTimestamp(), TimeProvider.System);
        using var body = new MemoryStream(Encoding.UTF8.GetBytes(sse));
        return await validator.ReadAsync(body, Ct);
    }

    [Fact]
    public async Task ACompleteStreamInOrderIsCountedWithItsTimings()
    {
        var result = await CheckAsync(Start + Token(0) + ": ping\n\n" + Token(1) + Token(2) + End("length", 3));

        Assert.True(result.Completed);
        Assert.Null(result.Failure);
        Assert.Equal(7, result.Index);
        Assert.Equal(3, result.Tokens);
        Assert.Equal("length", result.EndReason);
        Assert.NotNull(result.TimeToFirstToken);
        Assert.Equal(2, result.InterTokenGaps.Count);
    }

    private static string Reasoning(int n) =>
        $"id: {n + 50}-0\nevent: reasoning\ndata: {{\"type\":\"inference.reasoning\",\"payload\":{{\"text\":\"think {n}\"}}}}\n\n";

    private static string ToolCall(int n) =>
        $"id: {n + 60}-0\nevent: tool_call\ndata: {{\"type\":\"inference.tool_call\",\"payload\":{{\"index\":0,\"arguments\":\"{{}}\"}}}}\n\n";

    [Fact]
    public async Task ReasoningAndToolCallFragmentsCountInTheEndsOutputTokens()
    {
        var result = await CheckAsync(Start + Reasoning(0) + Reasoning(1) + Token(0) + ToolCall(0) + End("tool_calls", 4));

        Assert.True(result.Completed);
        Assert.Null(result.Failure);
        Assert.Equal(1, result.Tokens);
        Assert.Equal("tool_calls", result.EndReason);
    }

    [Fact]
    public async Task AReasoningFragmentAfterTheEndIsOutOfOrder()
    {
        var result = await CheckAsync(Start + Token(0) + End("length", 1) + Reasoning(0));

        Assert.Equal(FailureKinds.OutOfOrder, result.Failure);
    }

    public static TheoryData<string, string, string, int> BrokenStreams => new()
    {
        // name, SSE text, failure kind, tokens counted
        { "gap in indices", Start + Token(0) + Token(1) + Token(3) + End("length", 3), FailureKinds.OutOfOrder, 2 },
        { "no end", Start + Token(0) + Token(1), FailureKinds.Incomplete, 2 },
        { "error then end", Start + Token(0) + Error("provider_error") + End("error", 1), "error_provider_error", 1 },
        { "error without end", Start + Token(0) + Error("provider_error"), FailureKinds.Incomplete, 1 },
        { "token before start", Token(0) + Start + End("length", 1), FailureKinds.OutOfOrder, 0 },
        { "event after end", Start + Token(0) + End("length", 1) + Token(1), FailureKinds.OutOfOrder, 1 },
        { "usage disagrees", Start + Token(0) + Token(1) + End("length", 5), FailureKinds.UsageMismatch, 2 },
        { "malformed data", Start + Token(0) + "event: token\ndata: {\"type\":\n\n" + End("length", 2), FailureKinds.MalformedEvent, 1 },
        { "empty body", "", FailureKinds.Incomplete, 0 },
    };

    [Theory]
    [MemberData(nameof(BrokenStreams))]
    public async Task ABrokenStreamFailsWithItsKindAndKeepsTheTokensBeforeTheBreak(string name, string sse, string failure, int tokens)
    {
        var result = await CheckAsync(sse);

        Assert.False(result.Completed, name);
        Assert.Equal(failure, result.Failure);
        Assert.Equal(tokens, result.Tokens);
    }

    [Theory]
    [InlineData("90s", 90_000)]
    [InlineData("500ms", 500)]
    [InlineData("2m", 120_000)]
    [InlineData("00:00:03", 3_000)]
    public void DurationsReadAsSecondsMinutesOrTimeSpans(string text, int milliseconds)
    {
        Assert.True(LoadTestCommand.TryParseDuration(text, out var duration));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), duration);
    }

    [Fact]
    public async Task BadArgumentsExitWithTwo()
    {
        var exitCode = await LoadTestCommand.InvokeAsync(["--streams", "0", "--rate", "-1"]).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(LoadTestCommand.BadArguments, exitCode);
    }
}

/// <summary>The report's arithmetic over results whose timings are known.</summary>
public sealed class LoadTestReportTests
{
    private static StreamResult Ok(int index, int ttftMs) => new(
        index, Failure: null, EndReason: "length", Tokens: 10, TimeSpan.FromMilliseconds(ttftMs),
        Enumerable.Repeat(TimeSpan.FromMilliseconds(2), 9).ToArray(), TimeSpan.FromMilliseconds(ttftMs + 18));

    [Fact]
    public void TheReportCountsOutcomesAndTakesPercentilesFromTheHistograms()
    {
        var builder = new ReportBuilder(new LoadTestSettings { Url = new Uri("http://localhost:8080"), Streams = 110, MaxTokens = 10 });
        for (var i = 1; i <= 100; i++)
        {
            builder.Add(Ok(i, i));
        }

        builder.Add(new StreamResult(101, FailureKinds.Incomplete, null, 5, null, [], TimeSpan.FromSeconds(1)));
        builder.Add(new StreamResult(102, FailureKinds.Http(429), null, 0, null, [], TimeSpan.FromMilliseconds(3)));
        var last = builder.Add(new StreamResult(103, null, null, 0, null, [], TimeSpan.FromMilliseconds(3), Interrupted: true));

        var report = builder.Build(TimeSpan.FromSeconds(2), cancelled: true);

        Assert.Equal(new LoadProgress(103, 2, 1005), last);
        Assert.Equal(new StreamCounts(Requested: 110, Started: 103, Completed: 100, Failed: 2, Incomplete: 1, Interrupted: 1, NotStarted: 7), report.Streams);
        Assert.False(report.AllCompleted);
        Assert.True(report.Cancelled);
        Assert.Equal(1005, report.Tokens);
        Assert.Equal(502.5, report.TokensPerSecond);
        Assert.Equal(50, report.StreamsPerSecond);
        Assert.Equal(new Dictionary<string, int> { ["length"] = 100 }, report.EndReasons);
        Assert.Equal(new Dictionary<string, int> { ["http_429"] = 1, ["incomplete"] = 1 }, report.Errors);

        // Three significant digits: each figure is within 0.1% above the value recorded.
        var ttft = report.TimeToFirstTokenMs;
        Assert.Equal(100, ttft.Count);
        Assert.InRange(ttft.P50, 50, 50.05);
        Assert.InRange(ttft.P90, 90, 90.09);
        Assert.InRange(ttft.P99, 99, 99.1);
        Assert.InRange(ttft.Max, 100, 100.1);
        Assert.Equal(new LatencySummary(900, 2, 2, 2, 2), report.InterTokenLatencyMs);
    }

    [Fact]
    public void AReportOfCompleteStreamsOnlyIsAllCompleted()
    {
        var builder = new ReportBuilder(new LoadTestSettings { Url = new Uri("http://localhost:8080"), Streams = 2 });
        builder.Add(Ok(0, 5));
        builder.Add(Ok(1, 7));

        var report = builder.Build(TimeSpan.FromSeconds(1), cancelled: false);

        Assert.True(report.AllCompleted);
        Assert.Equal(20, report.Tokens);
        Assert.Equal(2, report.StreamsPerSecond);
    }
}

/// <summary>
/// The load tool against the AppHost: in process through its runner, through its command line, and as the
/// AppHost's own <c>loadtest</c> resource (enabled here with a short run).
/// </summary>
public sealed class LoadTestToolTests(LoadTestToolTests.Fixture fixture) : IClassFixture<LoadTestToolTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public DistributedApplication App { get; private set; } = null!;

        public Uri Gateway { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            using var startup = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
                [
                    "Gateway:Port=0",
                    "Services:Worker:Providers:Synthetic:TokenDelay=00:00:00.002",
                    "LoadTest:Enabled=true",
                    "LoadTest:Args=--streams 20 --concurrency 4 --max-tokens 8 --no-progress",
                ], startup.Token);
            App = await builder.BuildAsync(startup.Token);
            await App.StartAsync(startup.Token);
            foreach (var resource in new[] { "redis", "streamapi", "worker", "gateway" })
            {
                await App.ResourceNotifications.WaitForResourceHealthyAsync(resource, startup.Token);
            }

            Gateway = App.GetEndpoint("gateway", "http");
        }

        public async ValueTask DisposeAsync()
        {
            if (App is not null)
            {
                await App.DisposeAsync();
            }
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheRunnerCountsEveryStreamThroughTheGateway()
    {
        var settings = new LoadTestSettings { Url = fixture.Gateway, Streams = 40, Concurrency = 8, MaxTokens = 16 };
        using var http = LoadRunner.CreateHttpClient(settings.Url);
        var progress = 0;
        var runner = new LoadRunner(http, settings);

        var report = await runner.RunAsync(_ => Interlocked.Increment(ref progress), Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);

        WriteTable(report);
        Assert.Equal(new StreamCounts(Requested: 40, Started: 40, Completed: 40, Failed: 0, Incomplete: 0, Interrupted: 0, NotStarted: 0), report.Streams);
        Assert.Empty(report.Errors);
        Assert.Equal(new Dictionary<string, int> { ["length"] = 40 }, report.EndReasons);
        Assert.Equal(640, report.Tokens);
        Assert.Equal(40, progress);
        Assert.Equal(40, report.TimeToFirstTokenMs.Count);
        Assert.Equal(40 * 15, report.InterTokenLatencyMs.Count);
        Assert.True(report.TimeToFirstTokenMs.P50 > 0);
        Assert.True(report.TimeToFirstTokenMs.P99 >= report.TimeToFirstTokenMs.P50);
        Assert.True(report.TokensPerSecond > 0);
        Assert.True(report.AllCompleted);
    }

    [Fact]
    public async Task WarmUpStreamsRunFirstAndAreLeftOutOfTheReport()
    {
        var settings = new LoadTestSettings { Url = fixture.Gateway, Streams = 6, Concurrency = 2, MaxTokens = 4, WarmupStreams = 4 };
        var requests = 0;
        using var http = new HttpClient(new CountingHandler(() => Interlocked.Increment(ref requests)))
        {
            BaseAddress = settings.Url,
            Timeout = Timeout.InfiniteTimeSpan,
        };

        var report = await new LoadRunner(http, settings).RunAsync(null, Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);

        Assert.Equal(10, requests);
        Assert.Equal(new StreamCounts(Requested: 6, Started: 6, Completed: 6, Failed: 0, Incomplete: 0, Interrupted: 0, NotStarted: 0), report.Streams);
        Assert.Equal(24, report.Tokens);
        Assert.Equal(6, report.TimeToFirstTokenMs.Count);
    }

    [Fact]
    public async Task TheCommandWritesAJsonReportAndExitsWithZero()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vixaspire-loadtest-{Guid.NewGuid():N}.json");
        try
        {
            var exitCode = await LoadTestCommand.InvokeAsync(
                ["--url", fixture.Gateway.ToString(), "--streams", "12", "--concurrency", "4", "--max-tokens", "5", "--rate", "50", "--no-progress", "--json", path])
                .WaitAsync(TimeSpan.FromMinutes(2), Ct);

            Assert.Equal(LoadTestCommand.Success, exitCode);
            using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(path, Ct));
            var root = json.RootElement;
            Assert.Equal(12, root.GetProperty("streams").GetProperty("completed").GetInt32());
            Assert.Equal(0, root.GetProperty("streams").GetProperty("failed").GetInt32());
            Assert.Equal(60, root.GetProperty("tokens").GetInt64());
            Assert.True(root.GetProperty("time_to_first_token_ms").GetProperty("p99").GetDouble() > 0);
            // 12 arrivals at 50 per second take at least 220 ms.
            Assert.True(root.GetProperty("elapsed_seconds").GetDouble() >= 0.22);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task TheAppHostRunsTheLoadTestResourceWhenEnabled()
    {
        var finished = await fixture.App.ResourceNotifications.WaitForResourceAsync("loadtest",
                e => e.Snapshot.ExitCode is not null || e.Snapshot.State?.Text == KnownResourceStates.FailedToStart, Ct)
            .WaitAsync(TimeSpan.FromMinutes(3), Ct);

        Assert.Equal(KnownResourceStates.Finished, finished.Snapshot.State?.Text);
        Assert.Equal(LoadTestCommand.Success, finished.Snapshot.ExitCode);
    }

    /// <summary>Counts the requests the runner sends, over a real socket handler.</summary>
    private sealed class CountingHandler(Action onSend) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            onSend();
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static void WriteTable(LoadReport report)
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        ReportOutput.WriteTable(console, report);
        TestContext.Current.TestOutputHelper?.WriteLine(text.ToString());
    }
}
