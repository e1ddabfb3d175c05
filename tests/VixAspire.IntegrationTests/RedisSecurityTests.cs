using System.Net;
using VixAspire.TestSupport;

namespace VixAspire.IntegrationTests;

/// <summary>
/// Redis locked down: the AppHost's redis-server requires a generated secret password kept off its command line,
/// provider keys reach the workers alone, and a service given the wrong Redis password stops at once, saying so.
/// </summary>
public sealed class RedisSecurityTests(RedisSecurityTests.PasswordProtectedRedis redis) : IClassFixture<RedisSecurityTests.PasswordProtectedRedis>
{
    public sealed class PasswordProtectedRedis : IAsyncLifetime
    {
        public RedisServer Server { get; } = RedisServer.WithPassword("right-" + Guid.NewGuid().ToString("N"));

        public ValueTask InitializeAsync() => Server.InitializeAsync();

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheAppHostsRedisServerRequiresAGeneratedSecretPasswordThatIsNotAmongItsArguments()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(["Redis:Hosting=process"], Ct);

        var server = Assert.IsAssignableFrom<IResourceWithConnectionString>(builder.Resources.Single(r => r.Name == "redis"));
        var password = Assert.Single(server.ConnectionStringExpression.ValueProviders.OfType<ParameterResource>());
        var value = await password.GetValueAsync(Ct);
        var args = await ArgumentsAsync(server);

        Assert.Equal("redis-password", password.Name);
        Assert.True(password.Secret);
        // Generated, and kept in the AppHost's user secrets in run mode so a restart keeps the same password.
        Assert.Contains(password.Default?.GetType().Name, new[] { nameof(GenerateParameterDefault), "UserSecretsParameterDefault" });
        Assert.Contains(",password=", server.ConnectionStringExpression.Format, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(value));
        Assert.DoesNotContain("--requirepass", args);
        Assert.DoesNotContain(args, a => a.Contains(value!, StringComparison.Ordinal));
        Assert.EndsWith(".conf", args[0], StringComparison.Ordinal);
        Assert.Equal(["--maxmemory", "512mb", "--maxmemory-policy", "noeviction"], After(args, "--maxmemory", 4));
        Assert.Equal(["--appendonly", "no"], After(args, "--appendonly", 2));
    }

    [Fact]
    public async Task RedisPasswordMaxMemoryAndPersistenceComeFromConfiguration()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["Redis:Hosting=process", "Parameters:redis-password=chosen-password-1", "Redis:MaxMemory=64mb", "Redis:Persistence=aof"], Ct);

        var server = Assert.IsAssignableFrom<IResourceWithConnectionString>(builder.Resources.Single(r => r.Name == "redis"));
        var password = Assert.Single(server.ConnectionStringExpression.ValueProviders.OfType<ParameterResource>());
        var args = await ArgumentsAsync(server);

        Assert.Equal("chosen-password-1", await password.GetValueAsync(Ct));
        Assert.DoesNotContain(args, a => a.Contains("chosen-password-1", StringComparison.Ordinal));
        Assert.Equal(["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"], After(args, "--maxmemory", 4));
        Assert.Equal(["--appendonly", "yes", "--appendfsync", "everysec"], After(args, "--appendonly", 4));
    }

    [Fact]
    public async Task AnUpstreamsApiKeyIsASecretParameterGivenToTheWorkersAloneNeverToTheGatewayOrTheApi()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["Redis:Hosting=process",
             "Services:All:Providers:OpenAI:upstream_a:Endpoint=http://127.0.0.1:9/v1",
             "Services:All:Providers:OpenAI:upstream_a:ApiKey=sk-shared-secret-a",
             "Services:Worker:Providers:OpenAI:local:Endpoint=http://127.0.0.1:9/v1",
             "Services:All:Inference:Models:remote:Provider=upstream_a"], Ct);

        var worker = await EnvironmentAsync(builder, "worker");

        var key = Assert.IsType<ParameterResource>(worker["Providers__OpenAI__upstream_a__ApiKey"]);
        Assert.Equal("provider-upstream-a-apikey", key.Name);
        Assert.True(key.Secret);
        Assert.Equal("sk-shared-secret-a", await key.GetValueAsync(Ct));
        Assert.Equal("http://127.0.0.1:9/v1", worker["Providers__OpenAI__upstream_a__Endpoint"]);
        // An upstream without a key gets no parameter.
        Assert.DoesNotContain(worker.Keys, k => k.StartsWith("Providers__OpenAI__local__ApiKey", StringComparison.Ordinal));
        foreach (var name in new[] { "gateway", "streamapi", "streamapi-1" })
        {
            var environment = await EnvironmentAsync(builder, name);
            Assert.Equal("upstream_a", environment["Inference__Models__remote__Provider"]);
            Assert.DoesNotContain(environment.Keys, k => k.Contains("ApiKey", StringComparison.OrdinalIgnoreCase));
            Assert.DoesNotContain(environment.Values, v => v is string s && s.Contains("sk-shared-secret-a", StringComparison.Ordinal));
            Assert.DoesNotContain(environment.Values, v => v is ParameterResource p && p.Name.StartsWith("provider-", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("StreamApi")]
    [InlineData("Worker")]
    public async Task AServiceGivenAWrongRedisPasswordStopsAtOnceSayingRedisRefusedIt(string project)
    {
        var wrong = $"127.0.0.1:{redis.Server.Port},password=wrong-{Guid.NewGuid():N}";

        var (exitCode, output) = await ServiceProcess.RunUntilExitAsync(project,
            new Dictionary<string, string?> { ["ConnectionStrings:redis"] = wrong }, TimeSpan.FromSeconds(60), Ct);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Redis refused the password in ConnectionStrings:redis", output, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, output, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("StreamApi")]
    [InlineData("Worker")]
    public async Task AServiceGivenTheRightRedisPasswordStartsServesAndNeverPrintsIt(string project)
    {
        await using var service = await ServiceProcess.StartAsync(project, project,
            new Dictionary<string, string?> { ["ConnectionStrings:redis"] = redis.Server.ConnectionString }, Ct);
        using var client = RunningServices.CreateClient(service.Address);

        using var health = await client.GetAsync("/health", Ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.False(service.HasExited);
        Assert.DoesNotContain(redis.Server.Password!, service.Output, StringComparison.Ordinal);
    }

    private static async Task<List<string>> ArgumentsAsync(IResource resource)
    {
        var args = new List<object>();
        foreach (var callback in resource.Annotations.OfType<CommandLineArgsCallbackAnnotation>())
        {
            await callback.Callback(new CommandLineArgsCallbackContext(args, resource, Ct));
        }

        return [.. args.Select(a => a as string ?? $"<{a.GetType().Name}>")];
    }

    private static IEnumerable<string> After(List<string> args, string first, int count) =>
        args.Skip(args.IndexOf(first)).Take(count);

    private static async Task<Dictionary<string, object>> EnvironmentAsync(IDistributedApplicationTestingBuilder builder, string name)
    {
        var resource = builder.Resources.Single(r => r.Name == name);
        var environment = new Dictionary<string, object>();
        var context = new EnvironmentCallbackContext(builder.ExecutionContext, resource, environment, Ct);
        foreach (var callback in resource.Annotations.OfType<EnvironmentCallbackAnnotation>())
        {
            await callback.Callback(context);
        }

        return environment;
    }
}
