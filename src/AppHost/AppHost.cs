using Microsoft.Extensions.Configuration;
using VixAspire.AppHost;
using VixAspire.Contracts;

var builder = DistributedApplication.CreateBuilder(args);

if (!RedisHosting.TryAddRedis(builder, RedisConnection.Name, out var redis, out var problem))
{
    Console.Error.WriteLine(problem);
    return 1;
}

var streamApis = builder.AddStreamApiReplicas(replica => replica
    .WithReference(redis).WaitFor(redis)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "StreamApi"));

// Upstream API keys are secret parameters, and only the workers, which call the upstreams, receive them.
var providerKeys = builder.AddProviderKeys();

builder.AddProject<Projects.Worker>("worker")
    .WithReference(redis).WaitFor(redis)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "Worker")
    .WithProviderKeys(providerKeys)
    .WithHttpHealthCheck("/health")
    .WithReplicas(Topology.Replicas(builder.Configuration, "Worker"));

var gateway = builder.AddProject<Projects.Gateway>("gateway")
    .WithStreamApiDestinations(streamApis)
    .WithServiceSettings(builder.Configuration, "All")
    .WithServiceSettings(builder.Configuration, "Gateway")
    .WithPublicEndpoint(builder.Configuration);

// The load test waits for a Start in the dashboard unless LoadTest:Enabled; LoadTest:Args are its options.
var loadTest = builder.AddProject<Projects.LoadTest>("loadtest")
    .WithReference(gateway).WaitFor(gateway)
    .WithArgs((builder.Configuration["LoadTest:Args"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries));
if (!builder.Configuration.GetValue("LoadTest:Enabled", false))
{
    loadTest.WithExplicitStart();
}

// Every service listens on plain HTTP (the http launch profile, ASPIRE_ALLOW_UNSECURED_TRANSPORT): none is given a
// development certificate, so none is looked for, and a machine without one gets no dashboard error about it.
foreach (var project in builder.Resources.OfType<ProjectResource>().ToList())
{
#pragma warning disable ASPIRECERTIFICATES001 // marked for evaluation in Aspire 13.6
    builder.CreateResourceBuilder(project).WithoutHttpsCertificate();
#pragma warning restore ASPIRECERTIFICATES001
}

builder.Build().Run();
return 0;

