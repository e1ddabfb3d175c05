using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace VixAspire.IntegrationTests;

/// <summary>
/// deploy/compose.yaml and deploy/k8s are written by hand; these tests hold them to the AppHost's own
/// deployment manifest (<c>--publisher manifest</c>): the same resources, the same settings per service,
/// the same references between them, and the same endpoints (HTTP on one port, external only where the
/// AppHost says so).
/// </summary>
public sealed partial class DeployArtifactsTests(AppHostManifest manifest) : IClassFixture<AppHostManifest>
{
    // Settings a deployment adds that the AppHost has no counterpart for: the Redis password the connection
    // string is built from (k8s), the gateway's destination (the AppHost gives it service discovery instead),
    // and the load tool's gateway URL.
    private static readonly string[] DeployOnlyPrefixes = ["REDIS_PASSWORD", "ReverseProxy__", "services__"];

    private static readonly Artifacts Deployed = Artifacts.Load(AppHostManifest.RepositoryRoot);

    [Fact]
    public void EveryAppHostResourceIsDeployedAndNothingElse()
    {
        var resources = manifest.Resources.Select(r => r.Name).Order().ToList();

        Assert.NotEmpty(manifest.Projects);
        Assert.Equal(resources, Deployed.Compose.Keys.Order());
        Assert.Equal(resources, Deployed.Workloads.Keys.Order());
    }

    [Fact]
    public void EachServiceGetsTheSettingsTheAppHostGivesIt()
    {
        foreach (var project in manifest.Projects)
        {
            // Prefixed with the service so a failure names it.
            var expected = project.Settings.Order().Select(k => $"{project.Name}: {k}").ToList();
            Assert.Equal(expected, DeploymentSettings(Deployed.Compose[project.Name].Env.Keys).Order().Select(k => $"{project.Name}: {k}"));
            Assert.Equal(expected, DeploymentSettings(Deployed.Workloads[project.Name].Env.Keys).Order().Select(k => $"{project.Name}: {k}"));
        }
    }

    [Fact]
    public void ServicesReachWhatTheAppHostReferencesByNameAndPort()
    {
        var checkedReferences = 0;
        foreach (var project in manifest.Projects)
        {
            foreach (var target in project.ConnectionStrings)
            {
                var port = Assert.Single(Deployed.Services[target].Ports).Port;
                Assert.StartsWith($"{target}:{port},", Deployed.Compose[project.Name].Env[$"ConnectionStrings__{target}"]);
                Assert.StartsWith($"{target}:{port},", Deployed.Workloads[project.Name].Env[$"ConnectionStrings__{target}"]);
                Assert.Equal(port, Deployed.Workloads[target].Ports.Values.Single());
                checkedReferences++;
            }

            foreach (var (target, endpoint) in project.ServiceReferences.Where(r => r.Endpoint != "https"))
            {
                // Addressed as http://name:port, the name being a Service in k8s and a service in compose, the port
                // the one named as the AppHost's endpoint (http, or StreamApi's h2).
                var servicePort = Deployed.Services[target].Ports.Single(p => p.Name == endpoint).Port;
                var url = $"http://{target}:{servicePort}";
                Assert.Equal(Deployed.Workloads[target].Ports[endpoint], servicePort);
                Assert.Contains(url, Deployed.Compose[project.Name].Env.Values);
                Assert.Contains(url, Deployed.Workloads[project.Name].Env.Values);
                checkedReferences++;
            }
        }

        Assert.True(checkedReferences >= 3, $"only {checkedReferences} references between services in the manifest");
    }

    [Fact]
    public void EndpointsMatchTheAppHostsHttpBindings()
    {
        foreach (var project in manifest.Projects)
        {
            var compose = Deployed.Compose[project.Name];
            var workload = Deployed.Workloads[project.Name];
            if (project.Http is not { } http)
            {
                Assert.Empty(workload.Ports);
                Assert.Empty(compose.PublishedPorts);
                continue;
            }

            // HTTP_PORTS, or Kestrel's named endpoints, give a service its port: the same in every artifact.
            var port = workload.Ports["http"];
            Assert.Equal(port, ListenPort(workload.Env, "http"));
            Assert.Equal(port, ListenPort(compose.Env, "http"));
            foreach (var (name, targetPort) in project.InternalBindings)
            {
                // StreamApi's HTTP/2 endpoint: inside the cluster only, on the AppHost's container port.
                Assert.Equal(targetPort, workload.Ports[name]);
                Assert.Equal(targetPort, ListenPort(workload.Env, name));
                Assert.Equal(targetPort, ListenPort(compose.Env, name));
                Assert.Equal("ClusterIP", Deployed.Services[project.Name].Type);
                Assert.Equal(targetPort, Deployed.Services[project.Name].Ports.Single(p => p.Name == name).Port);
            }

            var service = Deployed.Services.GetValueOrDefault(project.Name);
            if (http.External)
            {
                Assert.NotNull(service);
                Assert.Contains(service.Type, new[] { "LoadBalancer", "NodePort" });
                Assert.Equal(http.Port ?? port, service.Ports.Single(p => p.Name == "http").Port);
                Assert.Equal(new[] { port }, compose.PublishedPorts);
            }
            else
            {
                Assert.True(service is null || service.Type == "ClusterIP", $"{project.Name} is exposed outside the cluster");
                Assert.Empty(compose.PublishedPorts);
            }
        }

        Assert.Contains(manifest.Projects, p => p.Http is { External: true });
        Assert.Contains(manifest.Projects, p => p.Http is { External: false });
    }

    [Fact]
    public void HttpServicesAreProbedOnHealthAndAlive()
    {
        var probed = 0;
        foreach (var project in manifest.Projects.Where(p => p.Http is not null))
        {
            var workload = Deployed.Workloads[project.Name];
            Assert.Equal("Deployment", workload.Kind);
            Assert.Equal(("/health", "http"), workload.Probes["readinessProbe"]);
            Assert.Equal(("/alive", "http"), workload.Probes["livenessProbe"]);
            Assert.Equal("http-health /health", Deployed.Compose[project.Name].HealthCheck);
            probed++;
        }

        Assert.True(probed >= 3, $"only {probed} HTTP services");
        Assert.Contains("redis-cli ping", Deployed.Compose["redis"].HealthCheck);
    }

    [Fact]
    public void StreamApiAndWorkerRunTwoReplicasAndEveryContainerIsNonRoot()
    {
        foreach (var name in new[] { "streamapi", "worker" })
        {
            Assert.Equal(2, Deployed.Workloads[name].Replicas);
            Assert.Equal(2, Deployed.Compose[name].Replicas);
        }

        Assert.All(Deployed.Workloads.Values, w => Assert.True(w.RunAsNonRoot, $"{w.Name} may run as root"));
        Assert.All(Deployed.Workloads.Values, w => Assert.True(w.HasResourceRequests, $"{w.Name} requests no resources"));
        Assert.Equal(new[] { "gateway" }, Deployed.Services.Values.Where(s => s.Type != "ClusterIP").Select(s => s.Name));
    }

    [Fact]
    public void RedisTakesItsPasswordFromASecretAndNeverEvicts()
    {
        var redis = Deployed.Workloads["redis"];
        Assert.Equal("secret", redis.EnvSources["REDIS_PASSWORD"]);
        Assert.Equal("noeviction", redis.Env["REDIS_MAXMEMORY_POLICY"]);
        Assert.Matches("^[0-9]+[kmg]b$", redis.Env["REDIS_MAXMEMORY"]);
        Assert.Equal("noeviction", Deployed.Compose["redis"].Env["REDIS_MAXMEMORY_POLICY"]);
        Assert.StartsWith("${REDIS_PASSWORD:?", Deployed.Compose["redis"].Env["REDIS_PASSWORD"]);

        foreach (var workload in Deployed.Workloads.Values.Where(w => w.Env.ContainsKey("ConnectionStrings__redis")))
        {
            Assert.Equal("secret", workload.EnvSources["REDIS_PASSWORD"]);
            Assert.EndsWith(",password=$(REDIS_PASSWORD)", workload.Env["ConnectionStrings__redis"]);
        }

        foreach (var service in Deployed.Compose.Values.Where(s => s.Env.ContainsKey("ConnectionStrings__redis")))
        {
            Assert.Contains(",password=${REDIS_PASSWORD", service.Env["ConnectionStrings__redis"]);
        }
    }

    /// <summary>The port a service listens on for endpoint <paramref name="name"/>: its Kestrel endpoint's URL, or HTTP_PORTS.</summary>
    private static int? ListenPort(IReadOnlyDictionary<string, string> env, string name) =>
        env.TryGetValue($"Kestrel__Endpoints__{name}__Url", out var url) ? int.Parse(url[(url.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture)
        : name == "http" && env.TryGetValue("HTTP_PORTS", out var ports) ? int.Parse(ports, System.Globalization.CultureInfo.InvariantCulture)
        : null;

    private static IEnumerable<string> DeploymentSettings(IEnumerable<string> keys) =>
        keys.Where(k => !DeployOnlyPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal)));
}

/// <summary>The AppHost's deployment manifest, generated once for the test class by the built AppHost.</summary>
public sealed partial class AppHostManifest : IAsyncLifetime
{
    public static string RepositoryRoot { get; } = Path.GetFullPath(Path.Combine(global::Projects.AppHost.ProjectPath, "..", ".."));

    private readonly string _directory = Directory.CreateTempSubdirectory("vixaspire-manifest-").FullName;

    public IReadOnlyList<ManifestResource> Resources { get; private set; } = [];

    public IEnumerable<ManifestProject> Projects => Resources.OfType<ManifestProject>();

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var appHostDll = Path.Combine(global::Projects.AppHost.ProjectPath, "bin",
            AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug", "net10.0", "AppHost.dll");
        var output = Path.Combine(_directory, "manifest.json");
        var start = new ProcessStartInfo(Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "dotnet")
        {
            ArgumentList = { appHostDll, "--publisher", "manifest", "--output-path", output },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        if (process.ExitCode != 0 || !File.Exists(output))
        {
            throw new InvalidOperationException($"The AppHost wrote no manifest (exit {process.ExitCode}):\n{await stdout}\n{await stderr}");
        }

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(output, ct));
        Resources = Parse(json.RootElement.GetProperty("resources"));
        RemoveRedisWorkingDirectory(json.RootElement.GetProperty("resources"));
    }

    // Without a container runtime the AppHost makes an empty working folder for redis-server, even to publish.
    private void RemoveRedisWorkingDirectory(JsonElement resources)
    {
        foreach (var resource in resources.EnumerateObject())
        {
            if (resource.Value.TryGetProperty("workingDirectory", out var relative)
                && Path.GetFullPath(Path.Combine(_directory, relative.GetString()!)) is var folder
                && Path.GetFileName(folder).StartsWith("vixaspire-redis-", StringComparison.Ordinal)
                && Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private static string? PathOf(JsonElement resource) => resource.TryGetProperty("path", out var path) ? path.GetString() : null;

    [GeneratedRegex("^(.+)-[0-9]+$")]
    private static partial Regex ReplicaName();

    private static List<ManifestResource> Parse(JsonElement resources)
    {
        var deployable = resources.EnumerateObject()
            .Where(r => Regex.IsMatch(r.Value.GetProperty("type").GetString() ?? "", "^(project|container|executable|dockerfile)\\."))
            .ToList();
        // The AppHost models each extra StreamApi replica as a resource of its own (name-1, name-2 …, same project):
        // a deployment runs them as replicas of one service.
        deployable.RemoveAll(r => ReplicaName().Match(r.Name) is { Success: true } replica
            && deployable.Any(o => o.Name == replica.Groups[1].Value && PathOf(o.Value) is { } path && path == PathOf(r.Value)));
        var names = deployable.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        return deployable.Select(r => r.Value.GetProperty("type").GetString()!.StartsWith("project.", StringComparison.Ordinal)
            ? ManifestProject.Parse(r.Name, r.Value, names)
            : new ManifestResource(r.Name)).ToList();
    }
}

public record ManifestResource(string Name);

public sealed record HttpBinding(int? Port, bool External);

/// <summary>
/// A project of the manifest: its own settings (what Aspire adds for itself, OTEL_*, ASPIRE_* and the
/// service-discovery variables, left out), whom it references, and its plain-HTTP endpoint.
/// </summary>
public sealed partial record ManifestProject(string Name, IReadOnlySet<string> Settings, IReadOnlySet<string> ConnectionStrings,
    IReadOnlySet<(string Service, string Endpoint)> ServiceReferences, HttpBinding? Http, IReadOnlyDictionary<string, int> InternalBindings)
    : ManifestResource(Name)
{
    public static ManifestProject Parse(string name, JsonElement resource, IReadOnlySet<string> resources)
    {
        var settings = new HashSet<string>(StringComparer.Ordinal);
        var connections = new HashSet<string>(StringComparer.Ordinal);
        var references = new HashSet<(string, string)>();
        var env = resource.TryGetProperty("env", out var e) ? e.EnumerateObject().Select(p => p.Name) : [];
        foreach (var key in env)
        {
            if (ServiceDiscovery().Match(key) is { Success: true } discovered)
            {
                references.Add((discovered.Groups[1].Value, discovered.Groups[2].Value));
            }
            else if (EndpointReference().Match(key) is { Success: true } endpoint
                     && resources.FirstOrDefault(r => r.ToUpperInvariant().Replace('-', '_') == endpoint.Groups[1].Value) is { } referenced)
            {
                // {RESOURCE}_{ENDPOINT}: Aspire's other spelling of a service-discovery variable.
                references.Add((referenced, endpoint.Groups[2].Value.ToLowerInvariant()));
            }
            else if (!key.StartsWith("OTEL_", StringComparison.Ordinal) && !key.StartsWith("ASPIRE_", StringComparison.Ordinal))
            {
                settings.Add(key);
                if (key.StartsWith("ConnectionStrings__", StringComparison.Ordinal))
                {
                    connections.Add(key["ConnectionStrings__".Length..]);
                }
            }
        }

        // HTTPS bindings are left out: containers serve plain HTTP and TLS ends at the load balancer.
        HttpBinding? http = null;
        if (resource.TryGetProperty("bindings", out var bindings) && bindings.TryGetProperty("http", out var binding))
        {
            http = new HttpBinding(
                binding.TryGetProperty("port", out var port) ? port.GetInt32() : null,
                binding.TryGetProperty("external", out var external) && external.GetBoolean());
        }

        // Other endpoints with a fixed container port (StreamApi's h2), which nothing outside reaches.
        var internalBindings = new Dictionary<string, int>(StringComparer.Ordinal);
        if (resource.TryGetProperty("bindings", out var all))
        {
            foreach (var other in all.EnumerateObject().Where(b => b.Name is not ("http" or "https")))
            {
                Assert.False(other.Value.TryGetProperty("external", out var open) && open.GetBoolean(), $"{name}'s {other.Name} is external");
                internalBindings[other.Name] = other.Value.GetProperty("targetPort").GetInt32();
            }
        }

        return new ManifestProject(name, settings, connections, references, http, internalBindings);
    }

    [GeneratedRegex("^services__(.+?)__(.+?)__")]
    private static partial Regex ServiceDiscovery();

    [GeneratedRegex("^([A-Z0-9_]+)_(HTTPS?)$")]
    private static partial Regex EndpointReference();
}

public sealed record ComposeService(string Name, IReadOnlyDictionary<string, string> Env, IReadOnlyList<int> PublishedPorts,
    string HealthCheck, int Replicas);

public sealed record K8sWorkload(string Name, string Kind, int Replicas, IReadOnlyDictionary<string, string> Env,
    IReadOnlyDictionary<string, string> EnvSources, IReadOnlyDictionary<string, int> Ports,
    IReadOnlyDictionary<string, (string Path, string Port)> Probes, bool RunAsNonRoot, bool HasResourceRequests);

public sealed record K8sService(string Name, string Type, IReadOnlyList<(string Name, int Port)> Ports);

/// <summary>deploy/compose.yaml and every object of deploy/k8s, read into what the tests compare.</summary>
public sealed record Artifacts(IReadOnlyDictionary<string, ComposeService> Compose, IReadOnlyDictionary<string, K8sWorkload> Workloads,
    IReadOnlyDictionary<string, K8sService> Services)
{
    public static Artifacts Load(string root)
    {
        var composeFile = LoadYaml(Path.Combine(root, "deploy", "compose.yaml")).Single();
        var compose = Mapping(composeFile, "services").Children.ToDictionary(
            s => Scalar(s.Key), s => ReadComposeService(Scalar(s.Key), (YamlMappingNode)s.Value), StringComparer.Ordinal);

        var objects = Directory.GetFiles(Path.Combine(root, "deploy", "k8s"), "*.yaml")
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .SelectMany(LoadYaml)
            .ToList();
        Assert.NotEmpty(objects);
        var workloads = objects.Where(o => Scalar(o, "kind") is "Deployment" or "Job" or "StatefulSet")
            .Select(ReadWorkload).ToDictionary(w => w.Name, StringComparer.Ordinal);
        var services = objects.Where(o => Scalar(o, "kind") == "Service")
            .Select(ReadService).ToDictionary(s => s.Name, StringComparer.Ordinal);
        return new Artifacts(compose, workloads, services);
    }

    private static ComposeService ReadComposeService(string name, YamlMappingNode service)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (Child(service, "environment"))
        {
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    env[Scalar(key)] = Scalar(value);
                }

                break;
            case YamlSequenceNode list:
                foreach (var item in list.Children.Select(Scalar))
                {
                    env[item.Split('=', 2)[0]] = item.Contains('=', StringComparison.Ordinal) ? item.Split('=', 2)[1] : "";
                }

                break;
        }

        // "host-ip:host-port:container-port" or shorter: the container's side is the last number.
        var ports = Child(service, "ports") is YamlSequenceNode p
            ? p.Children.Select(n => int.Parse(Scalar(n).Split('/')[0].Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture)).ToList()
            : [];
        // A string is a shell command; a list starts with CMD or CMD-SHELL.
        var health = (Child(service, "healthcheck") as YamlMappingNode is { } h ? Child(h, "test") : null) switch
        {
            YamlScalarNode command => command.Value ?? "",
            YamlSequenceNode list => string.Join(' ', list.Children.Skip(1).Select(Scalar)),
            _ => "",
        };
        var replicas = Child(service, "deploy") is YamlMappingNode d && Child(d, "replicas") is YamlScalarNode r ? int.Parse(r.Value!, System.Globalization.CultureInfo.InvariantCulture) : 1;
        return new ComposeService(name, env, ports, health, replicas);
    }

    private static K8sWorkload ReadWorkload(YamlMappingNode workload)
    {
        var name = Scalar(Mapping(workload, "metadata"), "name");
        var spec = Mapping(workload, "spec");
        var pod = Mapping(Mapping(spec, "template"), "spec");
        var container = (YamlMappingNode)Assert.Single(((YamlSequenceNode)Child(pod, "containers")!).Children);

        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in (Child(container, "env") as YamlSequenceNode)?.Children.Cast<YamlMappingNode>() ?? [])
        {
            var key = Scalar(variable, "name");
            env[key] = Child(variable, "value") is YamlScalarNode v ? v.Value ?? "" : "";
            sources[key] = Child(variable, "valueFrom") is YamlMappingNode from && Child(from, "secretKeyRef") is not null ? "secret" : "value";
        }

        var ports = (Child(container, "ports") as YamlSequenceNode)?.Children.Cast<YamlMappingNode>()
            .ToDictionary(p => Scalar(p, "name"), p => int.Parse(Scalar(p, "containerPort"), System.Globalization.CultureInfo.InvariantCulture))
            ?? [];
        var probes = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var kind in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
        {
            if (Child(container, kind) is YamlMappingNode probe && Child(probe, "httpGet") is YamlMappingNode get)
            {
                probes[kind] = (Scalar(get, "path"), Scalar(get, "port"));
            }
        }

        var nonRoot = Child(pod, "securityContext") is YamlMappingNode security && Child(security, "runAsNonRoot") is YamlScalarNode { Value: "true" };
        var requests = Child(container, "resources") is YamlMappingNode resources && Child(resources, "requests") is YamlMappingNode { Children.Count: > 0 };
        var replicas = Child(spec, "replicas") is YamlScalarNode r ? int.Parse(r.Value!, System.Globalization.CultureInfo.InvariantCulture) : 1;
        return new K8sWorkload(name, Scalar(workload, "kind"), replicas, env, sources, ports, probes, nonRoot, requests);
    }

    private static K8sService ReadService(YamlMappingNode service)
    {
        var spec = Mapping(service, "spec");
        var ports = ((YamlSequenceNode)Child(spec, "ports")!).Children.Cast<YamlMappingNode>()
            .Select(p => (Scalar(p, "name"), int.Parse(Scalar(p, "port"), System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        return new K8sService(Scalar(Mapping(service, "metadata"), "name"), Child(spec, "type") is YamlScalarNode t ? t.Value! : "ClusterIP", ports);
    }

    private static IEnumerable<YamlMappingNode> LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>().ToList();
    }

    private static YamlNode? Child(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private static YamlMappingNode Mapping(YamlMappingNode node, string key) =>
        Child(node, key) as YamlMappingNode ?? throw new InvalidOperationException($"'{key}' is not a mapping in {node.Start}");

    private static string Scalar(YamlMappingNode node, string key) =>
        Child(node, key) is YamlScalarNode { Value: { } value } ? value : throw new InvalidOperationException($"'{key}' is not a scalar in {node.Start}");

    private static string Scalar(YamlNode node) => ((YamlScalarNode)node).Value ?? "";
}
