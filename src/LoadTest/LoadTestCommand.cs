using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using OpenTelemetry.Metrics;
using Spectre.Console;

namespace VixAspire.LoadTest;

/// <summary>The command line: options, their checks, and one run from settings to report and exit code.</summary>
internal static class LoadTestCommand
{
    public const int Success = 0;
    public const int StreamsFailed = 1;
    public const int BadArguments = 2;

    public static async Task<int> InvokeAsync(string[] args)
    {
        var parsed = Create().Parse(args);
        if (parsed.Errors.Count > 0)
        {
            await parsed.InvokeAsync();
            return BadArguments;
        }

        // Ctrl+C cancels the run; leave time to print the partial report and flush metrics before the process ends.
        return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(15) });
    }

    private static RootCommand Create()
    {
        var url = Check(new Option<string>("--url")
        {
            Description = "Gateway base URL (default: the AppHost's services__gateway__http__0, else http://localhost:8080).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("services__gateway__http__0")
                ?? Environment.GetEnvironmentVariable("services__gateway__https__0")
                ?? "http://localhost:8080",
        }, v => Uri.TryCreate(v, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", "an absolute http or https URL");
        var streams = Check(new Option<int>("--streams") { Description = "Streams to run in total.", DefaultValueFactory = _ => 100 }, v => v >= 1, "at least 1");
        var concurrency = Check(new Option<int>("--concurrency") { Description = "Streams open at once.", DefaultValueFactory = _ => 10 }, v => v >= 1, "at least 1");
        var rate = Check(new Option<double>("--rate") { Description = "New streams per second; 0 starts them as fast as the concurrency allows." }, v => v >= 0, "0 or more");
        var duration = new Option<TimeSpan?>("--duration")
        {
            Description = "Start no new stream after this (90s, 5m, 500ms or hh:mm:ss); running streams finish.",
            CustomParser = ParseDuration,
        };
        var model = new Option<string>("--model") { Description = "Model to ask for.", DefaultValueFactory = _ => "synthetic" };
        var maxTokens = Check(new Option<int>("--max-tokens") { Description = "max_tokens of each request.", DefaultValueFactory = _ => 64 }, v => v is >= 1 and <= 32_768, "from 1 to 32768");
        var prompt = new Option<string>("--prompt") { Description = "Prompt; the stream number is appended so streams differ.", DefaultValueFactory = _ => LoadTestSettings.DefaultPrompt };
        var json = new Option<string?>("--json") { Description = "Write the JSON report to this file, or to stdout with '-' (the table then goes to stderr)." };
        var warmup = Check(new Option<int>("--warmup")
        {
            Description = "Streams to run first, at the same concurrency, left out of the report (the tool's own start: JIT, connections).",
        }, v => v >= 0, "0 or more");
        var noProgress = new Option<bool>("--no-progress") { Description = "No live progress (it is off anyway when output is redirected)." };

        var command = new RootCommand("Load test for the VixAspire gateway: runs POST /infer/stream streams, checks each one and reports latency percentiles.")
        {
            url, streams, concurrency, rate, duration, model, maxTokens, prompt, warmup, json, noProgress,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            new LoadTestSettings
            {
                Url = new Uri(parse.GetValue(url)!),
                Streams = parse.GetValue(streams),
                Concurrency = parse.GetValue(concurrency),
                Rate = parse.GetValue(rate),
                Duration = parse.GetValue(duration),
                Model = parse.GetValue(model)!,
                MaxTokens = parse.GetValue(maxTokens),
                Prompt = parse.GetValue(prompt)!,
                WarmupStreams = parse.GetValue(warmup),
            },
            parse.GetValue(json),
            parse.GetValue(noProgress),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(LoadTestSettings settings, string? json, bool noProgress, CancellationToken cancellationToken)
    {
        var jsonToStdout = json == "-";
        var console = jsonToStdout ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;
        var showProgress = !noProgress && !(jsonToStdout ? Console.IsErrorRedirected : Console.IsOutputRedirected);

        using var meterProvider = LoadTestMetrics.StartOtlpExport();
        using var metrics = new LoadTestMetrics();
        using var http = LoadRunner.CreateHttpClient(settings.Url);
        var runner = new LoadRunner(http, settings, metrics);

        console.MarkupLineInterpolated($"Load test: {settings.Streams} streams of {settings.MaxTokens} tokens from {settings.Model}, concurrency {settings.Concurrency}, rate {(settings.Rate > 0 ? $"{settings.Rate}/s" : "unlimited")}, against {settings.Url}");
        var report = showProgress
            ? await LiveProgress.RunAsync(console, runner, settings.Streams, cancellationToken)
            : await runner.RunAsync(null, cancellationToken);

        ReportOutput.WriteTable(console, report);
        if (json is not null)
        {
            await ReportOutput.WriteJsonAsync(json, report);
        }

        meterProvider?.ForceFlush(5_000);
        return report.AllCompleted ? Success : StreamsFailed;
    }

    private static Option<T> Check<T>(Option<T> option, Func<T, bool> valid, string expected)
    {
        option.Validators.Add(result =>
        {
            if (!valid(result.GetValueOrDefault<T>()))
            {
                result.AddError($"{option.Name} must be {expected}.");
            }
        });
        return option;
    }

    private static TimeSpan? ParseDuration(ArgumentResult result)
    {
        var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        if (TryParseDuration(text, out var duration) && duration > TimeSpan.Zero)
        {
            return duration;
        }

        result.AddError($"--duration '{text}' is not a positive duration such as 90s, 5m, 500ms or 00:01:30.");
        return null;
    }

    internal static bool TryParseDuration(string text, out TimeSpan duration)
    {
        (string Suffix, Func<double, TimeSpan> Make)[] units =
            [("ms", TimeSpan.FromMilliseconds), ("s", TimeSpan.FromSeconds), ("m", TimeSpan.FromMinutes), ("h", TimeSpan.FromHours)];
        foreach (var (suffix, make) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var amount))
            {
                duration = make(amount);
                return true;
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration);
    }
}
