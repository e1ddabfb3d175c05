using System.Diagnostics;

namespace VixAspire.IntegrationTests;

public class AppHostWithoutRedisTests
{
    [Fact]
    public async Task WithNeitherAContainerRuntimeNorRedisServerTheAppHostStopsAtOnceSayingWhatToInstall()
    {
        var appHostDll = Path.Combine(Projects.AppHost.ProjectPath, "bin",
            AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug", "net10.0", "AppHost.dll");
        Assert.True(File.Exists(appHostDll), appHostDll);
        var start = new ProcessStartInfo(Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "/usr/share/dotnet/dotnet")
        {
            ArgumentList = { appHostDll },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        // No docker, no podman, no redis-server on this PATH.
        start.Environment["PATH"] = Path.Combine(Path.GetTempPath(), "vix-empty-path");
        start.Environment["ASPIRE_ALLOW_UNSECURED_TRANSPORT"] = "true";

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(1, process.ExitCode);
        var message = (await stderr).Trim();
        Assert.Single(message.Split('\n'));
        Assert.Contains("install redis-server", message);
    }
}
