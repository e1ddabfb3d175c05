using Microsoft.Extensions.Configuration;

namespace VixAspire.AppHost;

/// <summary>
/// The request path as production has it: client → gateway → one StreamApi replica, with no proxy of
/// Aspire's in between. Under the AppHost every endpoint is proxied by default, so each hop would cross
/// DCP's proxy, which costs CPU and two file descriptors per stream per hop, and whose own limit takes
/// every service down with it when reached. Without a proxy nothing accepts connections for a service
/// before it listens, so each one reports healthy only once its <c>/health</c> answers, and whoever waits
/// for it (the gateway for the APIs, the load test for the gateway) starts after that.
/// </summary>
internal static class Topology
{
    public const string StreamApi = "streamapi";

    /// <summary>StreamApi's cleartext HTTP/2 endpoint, for the gateway; <c>http</c> (HTTP/1.1) serves everyone else.</summary>
    public const string Http2Endpoint = "h2";

    public const int Http2ContainerPort = 8081;

    /// <summary>
    /// <c>StreamApi:Replicas</c> StreamApi processes, each its own resource: Aspire refuses replicas of an
    /// unproxied endpoint (they would share one port), so replica 0 is <c>streamapi</c> and the others
    /// <c>streamapi-1</c>, <c>streamapi-2</c> …, nested under it in the dashboard, each on a port of its own.
    /// </summary>
    public static IReadOnlyList<IResourceBuilder<ProjectResource>> AddStreamApiReplicas(
        this IDistributedApplicationBuilder builder, Action<IResourceBuilder<ProjectResource>> configure)
    {
        var count = Replicas(builder.Configuration, "StreamApi");
        var replicas = new List<IResourceBuilder<ProjectResource>>(count);
        for (var i = 0; i < count; i++)
        {
            var replica = builder.AddProject<Projects.StreamApi>(i == 0 ? StreamApi : $"{StreamApi}-{i}")
                .WithEndpoint("http", endpoint =>
                {
                    // No fixed port (the launch profile's would collide between replicas): DCP allocates one
                    // and the process itself listens on it.
                    endpoint.Port = null;
                    endpoint.TargetPort = null;
                    endpoint.IsProxied = false;
                })
                .WithHttpEndpoint(name: Http2Endpoint, isProxied: false)
                .WithEndpoint(Http2Endpoint, endpoint =>
                {
                    endpoint.Transport = "http2";
                    // In a container: HTTP/1.1 on 8080 (the image's port), HTTP/2 beside it.
                    endpoint.TargetPort = builder.ExecutionContext.IsPublishMode ? Http2ContainerPort : null;
                })
                .WithKestrelEndpoints()
                .WithHttpHealthCheck("/health");
            if (i > 0)
            {
                replica.WithParentRelationship(replicas[0]);
            }

            configure(replica);
            replicas.Add(replica);
        }

        return replicas;
    }

    /// <summary>
    /// Kestrel cannot serve HTTP/1.1 and HTTP/2 without TLS on one port, so StreamApi listens twice, each endpoint
    /// named with its protocol in Kestrel's own configuration (<c>Kestrel__Endpoints__h2__Protocols=Http2</c>).
    /// Kestrel's endpoints replace ASPNETCORE_URLS and HTTP_PORTS, which Aspire would set as well: they go.
    /// </summary>
    private static IResourceBuilder<ProjectResource> WithKestrelEndpoints(this IResourceBuilder<ProjectResource> api) =>
        api.WithEnvironment(context =>
        {
            context.EnvironmentVariables.Remove("ASPNETCORE_URLS");
            context.EnvironmentVariables.Remove("HTTP_PORTS");
            // Run: the port DCP allocated on localhost; publish: every interface of the container.
            var host = context.ExecutionContext.IsRunMode ? "localhost" : "*";
            foreach (var name in new[] { "http", Http2Endpoint })
            {
                var port = api.GetEndpoint(name).Property(EndpointProperty.TargetPort);
                context.EnvironmentVariables[$"Kestrel__Endpoints__{name}__Url"] = ReferenceExpression.Create($"http://{host}:{port}");
            }

            context.EnvironmentVariables[$"Kestrel__Endpoints__{Http2Endpoint}__Protocols"] = "Http2";
        });

    /// <summary>
    /// Gives the gateway every replica's addresses under one service name, <c>services__streamapi__http__N</c>
    /// and <c>services__streamapi__h2__N</c>, so service discovery resolves <c>http://streamapi</c> and
    /// <c>http://_h2.streamapi</c> to all of them and YARP balances over the lot, over HTTP/1.1 or HTTP/2.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithStreamApiDestinations(
        this IResourceBuilder<ProjectResource> gateway, IReadOnlyList<IResourceBuilder<ProjectResource>> replicas)
    {
        for (var i = 0; i < replicas.Count; i++)
        {
            gateway.WithEnvironment($"services__{StreamApi}__http__{i}", replicas[i].GetEndpoint("http"))
                .WithEnvironment($"services__{StreamApi}__{Http2Endpoint}__{i}", replicas[i].GetEndpoint(Http2Endpoint))
                .WithReferenceRelationship(replicas[i])
                .WaitFor(replicas[i]);
        }

        return gateway;
    }

    /// <summary>
    /// The gateway's public endpoint, unproxied: the gateway process listens on <c>Gateway:Port</c> itself
    /// (8080 by default; 0 lets DCP pick a free port, for tests or a second AppHost beside a running one).
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithPublicEndpoint(this IResourceBuilder<ProjectResource> gateway, IConfiguration configuration)
    {
        int? port = configuration.GetValue("Gateway:Port", 8080) is var configured and > 0 ? configured : null;
        return gateway
            .WithEndpoint("http", endpoint =>
            {
                endpoint.Port = port;
                endpoint.TargetPort = port;
                endpoint.IsProxied = false;
            })
            .WithExternalHttpEndpoints()
            .WithHttpHealthCheck("/health");
    }

    public static int Replicas(IConfiguration configuration, string service)
    {
        var replicas = configuration.GetValue($"{service}:Replicas", 2);
        return replicas >= 1
            ? replicas
            : throw new InvalidOperationException($"{service}:Replicas must be at least 1 (was {replicas}).");
    }
}
