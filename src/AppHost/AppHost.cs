using Microsoft.Extensions.Configuration;
using VixAspire.AppHost;

var builder = DistributedApplication.CreateBuilder(args);

if (!RedisHosting.TryAddRedis(builder, "redis", out var redis, out var problem))
{
    Console.Error.WriteLine(problem);
    return 1;
}

var streamApi = builder.AddProject<Projects.StreamApi>("streamapi")
    .WithReference(redis).WaitFor(redis)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "StreamApi");

builder.AddProject<Projects.Worker>("worker")
    .WithReference(redis).WaitFor(redis)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "Worker")
    .WithReplicas(builder.Configuration.GetValue("Worker:Replicas", 1));

var gateway = builder.AddProject<Projects.Gateway>("gateway")
    .WithReference(streamApi).WaitFor(streamApi)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "Gateway")
    .WithEndpoint("http", endpoint => endpoint.Port = GatewayPort(builder.Configuration))
    .WithExternalHttpEndpoints();

// The load test waits for a Start in the dashboard unless LoadTest:Enabled; LoadTest:Args are its options.
var loadTest = builder.AddProject<Projects.LoadTest>("loadtest")
    .WithReference(gateway).WaitFor(gateway)
    .WithArgs((builder.Configuration["LoadTest:Args"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries));
if (!builder.Configuration.GetValue("LoadTest:Enabled", false))
{
    loadTest.WithExplicitStart();
}

builder.Build().Run();
return 0;

// 8080 by default; 0 lets Aspire pick a free port (tests, or a second AppHost beside a running one).
static int? GatewayPort(IConfiguration configuration) =>
    configuration.GetValue("Gateway:Port", 8080) is var port and > 0 ? port : null;
