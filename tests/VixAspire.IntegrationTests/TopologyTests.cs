namespace VixAspire.IntegrationTests;

/// <summary>The AppHost's model as configuration shapes it, read without starting anything.</summary>
public sealed class TopologyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ByDefaultTwoStreamApiReplicasAndTwoWorkersRunBehindAnUnproxiedGatewayOn8080()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>([], Ct);

        var apis = StreamApis(builder);
        var gateway = Assert.Single(Http(builder, "gateway"));

        Assert.Equal(["streamapi", "streamapi-1"], apis.Select(a => a.Name));
        Assert.All(apis, api => Assert.False(Assert.Single(Http(builder, api.Name)).IsProxied));
        Assert.All(apis, api => Assert.Null(Assert.Single(Http(builder, api.Name)).Port));
        Assert.Equal(2, Assert.Single(Resource(builder, "worker").Annotations.OfType<ReplicaAnnotation>()).Replicas);
        Assert.False(gateway.IsProxied);
        Assert.Equal(8080, gateway.Port);
        Assert.Equal(8080, gateway.TargetPort);
    }

    [Fact]
    public async Task EachStreamApiReplicaAlsoHasAnUnproxiedHttp2EndpointForTheGateway()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(["StreamApi:Replicas=3"], Ct);

        var apis = StreamApis(builder);

        Assert.Equal(3, apis.Length);
        Assert.All(apis, api =>
        {
            var h2 = Assert.Single(api.Annotations.OfType<EndpointAnnotation>(), e => e.Name == "h2");
            Assert.False(h2.IsProxied);
            Assert.Null(h2.Port);
            Assert.Equal("http", h2.UriScheme);
            Assert.Equal("http2", h2.Transport);
        });
        // The gateway waits for every replica, whose two endpoints it reaches through service discovery.
        var waits = Resource(builder, "gateway").Annotations.OfType<WaitAnnotation>().Select(w => w.Resource.Name).ToHashSet();
        Assert.Superset(apis.Select(a => a.Name).ToHashSet(), waits);
    }

    [Fact]
    public async Task TheReplicaCountsAndTheGatewayPortComeFromConfiguration()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["StreamApi:Replicas=3", "Worker:Replicas=1", "Gateway:Port=0"], Ct);

        var gateway = Assert.Single(Http(builder, "gateway"));

        Assert.Equal(["streamapi", "streamapi-1", "streamapi-2"], StreamApis(builder).Select(a => a.Name));
        Assert.Equal(1, Assert.Single(Resource(builder, "worker").Annotations.OfType<ReplicaAnnotation>()).Replicas);
        Assert.False(gateway.IsProxied);
        Assert.Null(gateway.Port);
    }

    [Fact]
    public async Task ZeroStreamApiReplicasIsRefusedWithTheSettingNamed()
    {
        var refused = await Assert.ThrowsAnyAsync<Exception>(() =>
            DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(["StreamApi:Replicas=0"], Ct));

        Assert.Contains("StreamApi:Replicas must be at least 1", refused.ToString(), StringComparison.Ordinal);
    }

    private static IResource Resource(IDistributedApplicationTestingBuilder builder, string name) =>
        builder.Resources.Single(r => r.Name == name);

    private static ProjectResource[] StreamApis(IDistributedApplicationTestingBuilder builder) =>
        [.. builder.Resources.OfType<ProjectResource>().Where(r => r.Name == "streamapi" || r.Name.StartsWith("streamapi-", StringComparison.Ordinal))
            .Where(r => !r.Name.EndsWith("-rebuilder", StringComparison.Ordinal)).OrderBy(r => r.Name, StringComparer.Ordinal)];

    private static IEnumerable<EndpointAnnotation> Http(IDistributedApplicationTestingBuilder builder, string name) =>
        Resource(builder, name).Annotations.OfType<EndpointAnnotation>().Where(e => e.Name == "http");
}
