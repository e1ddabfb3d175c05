using System.Diagnostics;
using System.Text.Json;

namespace VixAspire.TestSupport;

/// <summary>
/// The JavaScript clients people point at VixAspire (npm <c>openai</c>, the Vercel AI SDK), run unmodified with the
/// machine's Node.js. Each script under <c>tests/js</c> takes the base URL and its arguments from environment
/// variables (<c>VIX_BASE_URL</c>, <c>VIX_API_KEY</c>, <c>VIX_ARGS</c> as JSON) and prints what it observed as one
/// JSON line, its last on stdout. The packages come from <c>tests/js/package-lock.json</c> through <c>npm ci</c>,
/// which <c>./test.sh</c> runs when <c>tests/js/node_modules</c> is missing.
/// </summary>
public static class NodeClients
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private static readonly Lazy<string> Scripts = new(FindScripts);

    private static readonly Lazy<string> Node = new(FindNode);

    /// <summary>The repository's <c>tests/js</c>, found above the test's build output (its node_modules is not copied).</summary>
    public static string ScriptsDirectory => Scripts.Value;

    /// <summary><c>VIX_NODE</c> when set, else <c>node</c> on PATH, else <c>/usr/bin/node</c>.</summary>
    public static string NodePath => Node.Value;

    /// <summary>
    /// Runs <paramref name="script"/> (a file in <c>tests/js</c>) against <paramref name="baseUrl"/> and returns the JSON it
    /// printed last. The run is bounded by <paramref name="timeout"/> (<see cref="DefaultTimeout"/> when null) and by
    /// <paramref name="cancellationToken"/>; on either, node and anything it started are killed. A script that exits
    /// non-zero, or prints no JSON, fails with its stderr and stdout in the message.
    /// </summary>
    public static async Task<JsonElement> RunAsync(string script, Uri baseUrl, object? arguments = null, string? apiKey = null,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var bound = timeout ?? DefaultTimeout;
        var start = new ProcessStartInfo(NodePath)
        {
            ArgumentList = { Path.Combine(ScriptsDirectory, script) },
            WorkingDirectory = ScriptsDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["VIX_BASE_URL"] = baseUrl.ToString();
        start.Environment["VIX_API_KEY"] = apiKey;
        start.Environment["VIX_ARGS"] = JsonSerializer.Serialize(arguments ?? new { });
        start.Environment["NO_COLOR"] = "1";
        // Only what the script asks for: no inherited --require or loader flags.
        start.Environment["NODE_OPTIONS"] = null;

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{NodePath} did not start.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(bound);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
            await Task.WhenAll(stdout, stderr).WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited meanwhile.
            }

            await process.WaitForExitAsync(CancellationToken.None);
            var (output, errors) = (await stdout, await stderr);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"node {script} still ran {bound} after it started, and was killed.{Describe(output, errors)}");
        }

        var (printed, complaints) = (await stdout, await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"node {script} exited with {process.ExitCode}.{Describe(printed, complaints)}");
        }

        var last = printed.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        try
        {
            using var json = JsonDocument.Parse(last ?? throw new JsonException("no output"));
            return json.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"node {script} did not print JSON last ({e.Message}).{Describe(printed, complaints)}", e);
        }
    }

    private static string Describe(string stdout, string stderr) => $"\n--- stderr\n{stderr.TrimEnd()}\n--- stdout\n{stdout.TrimEnd()}";

    private static string FindScripts()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "VixAspire.sln")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException("VixAspire.sln not found above " + AppContext.BaseDirectory);
        }

        var scripts = Path.Combine(root.FullName, "tests", "js");
        return Directory.Exists(Path.Combine(scripts, "node_modules"))
            ? scripts
            : throw new InvalidOperationException($"{scripts}/node_modules is missing: run `npm ci` there (./test.sh does it when it is missing).");
    }

    private static string FindNode()
    {
        if (Environment.GetEnvironmentVariable("VIX_NODE") is { Length: > 0 } configured)
        {
            return configured;
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "node"))
            .FirstOrDefault(File.Exists);
        return onPath ?? (File.Exists("/usr/bin/node")
            ? "/usr/bin/node"
            : throw new InvalidOperationException("Node.js not found: install it (Debian's nodejs), put node on PATH, or set VIX_NODE."));
    }
}
