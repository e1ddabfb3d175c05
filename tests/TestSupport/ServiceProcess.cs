using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VixAspire.TestSupport;

/// <summary>
/// One service (StreamApi, Worker or Gateway) run as a process of its own from its build output, configured only
/// through environment variables, as a deployment runs it. Unlike the in-process hosts of
/// <see cref="RunningServices"/>, it can really be killed: <see cref="KillAsync"/> sends SIGKILL, and nothing of it
/// runs on afterwards.
/// </summary>
public sealed partial class ServiceProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _drainOut;
    private readonly Task _drainErr;

    private ServiceProcess(string name, Process process, Uri? http2Address = null)
    {
        Name = name;
        _process = process;
        Http2Address = http2Address;
        _drainOut = DrainAsync(process.StandardOutput);
        _drainErr = DrainAsync(process.StandardError);
    }

    public string Name { get; }

    public int Pid => _process.Id;

    /// <summary>The address the service's Kestrel listens on (HTTP/1.1).</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Its cleartext HTTP/2 endpoint, when its settings give one (see <see cref="ApiEndpoints"/>).</summary>
    public Uri? Http2Address { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Everything the process printed so far, for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="project"/> (the folder name under <c>src/</c>) from its build output, with
    /// <paramref name="settings"/> as environment variables (<c>A:B</c> becomes <c>A__B</c>), on a free loopback
    /// port, and returns once it listens.
    /// </summary>
    public static async Task<ServiceProcess> StartAsync(string project, string name, IReadOnlyDictionary<string, string?> settings,
        CancellationToken cancellationToken)
    {
        var process = Process.Start(StartInfo(project, settings)) ?? throw new InvalidOperationException($"{project} did not start.");
        var service = new ServiceProcess(name, process, ApiEndpoints.Http2Address(settings));
        try
        {
            var exited = process.WaitForExitAsync(cancellationToken);
            var first = await Task.WhenAny(service._listening.Task, exited).WaitAsync(StartTimeout, cancellationToken);
            if (first != service._listening.Task)
            {
                throw new InvalidOperationException($"{name} exited with {process.ExitCode} before listening:\n{service.Output}");
            }

            service.Address = await service._listening.Task;
            return service;
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts <paramref name="project"/> as <see cref="StartAsync"/> does and waits up to <paramref name="timeout"/>
    /// for it to exit by itself, for a service expected to refuse to run; returns its exit code and everything it printed.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(string project, IReadOnlyDictionary<string, string?> settings,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        var process = Process.Start(StartInfo(project, settings)) ?? throw new InvalidOperationException($"{project} did not start.");
        await using var service = new ServiceProcess(project, process);
        try
        {
            await process.WaitForExitAsync(cancellationToken).WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            await service.KillAsync();
            await Task.WhenAll(service._drainOut, service._drainErr);
            throw new TimeoutException($"{project} still ran {timeout} after it started:\n{service.Output}");
        }

        await Task.WhenAll(service._drainOut, service._drainErr);
        return (process.ExitCode, service.Output);
    }

    private static ProcessStartInfo StartInfo(string project, IReadOnlyDictionary<string, string?> settings)
    {
        var directory = BuildOutput(project);
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(directory, AssemblyOf(project)) },
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = Environment.GetEnvironmentVariable("VIX_TEST_LOG") ?? "Warning";
        // The one line the harness reads: "Now listening on: http://127.0.0.1:port".
        start.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        start.Environment["Logging__Console__FormatterName"] = "simple";
        start.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = null;
        foreach (var (key, value) in settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        return start;

    }

    /// <summary>SIGKILL: the process gets no chance to clean up, as when a machine or container dies.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM: the host's graceful shutdown, as an orchestrator stops a replica.</summary>
    public async Task TerminateAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            SendSigterm(_process.Id);
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
            throw new TimeoutException($"{Name} did not stop within {timeout} of SIGTERM:\n{Output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        await Task.WhenAll(_drainOut, _drainErr);
        _process.Dispose();
    }

    private async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }

            if (!_listening.Task.IsCompleted && ListeningLine().Match(line) is { Success: true } match
                && new Uri(match.Groups[1].Value) != Http2Address)
            {
                _listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        }
    }

    /// <summary>The service's own build output, of the same configuration as the running tests (<c>src/X/bin/Release/net10.0</c>).</summary>
    private static string BuildOutput(string project)
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory);
        // tests/<project>/bin/<configuration>/<tfm>/
        var tfm = testOutput.Name;
        var configuration = testOutput.Parent!.Name;
        var root = testOutput;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "VixAspire.sln")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException("VixAspire.sln not found above " + AppContext.BaseDirectory);
        }

        var directory = Path.Combine(root.FullName, "src", project, "bin", configuration, tfm);
        return File.Exists(Path.Combine(directory, AssemblyOf(project)))
            ? directory
            : throw new InvalidOperationException($"{project} is not built in {directory}: build the solution first.");
    }

    private static string AssemblyOf(string project) => $"VixAspire.{project}.dll";

    private static void SendSigterm(int pid)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", pid.ToString(CultureInfo.InvariantCulture) } });
        kill?.WaitForExit();
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
