using Spectre.Console;

namespace VixAspire.LoadTest;

/// <summary>A progress bar that follows finished streams while the runner works.</summary>
internal static class LiveProgress
{
    public static Task<LoadReport> RunAsync(IAnsiConsole console, LoadRunner runner, int streams, CancellationToken cancellationToken) =>
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Describe(default, streams), maxValue: streams);
                var report = await runner.RunAsync(progress =>
                {
                    task.Increment(1);
                    task.Description = Describe(progress, streams);
                }, cancellationToken);
                task.StopTask();
                return report;
            });

    private static string Describe(LoadProgress progress, int streams) =>
        $"{progress.Finished}/{streams} streams, {progress.Failed} failed, {progress.Tokens} tokens";
}
