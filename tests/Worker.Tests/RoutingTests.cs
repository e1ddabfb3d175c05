using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.TestSupport;
using VixAspire.Worker.Providers;

namespace VixAspire.Worker.Tests;

/// <summary>The routing table: what configuration binds to, what validation refuses, and the order providers are tried in.</summary>
public sealed class RoutingTests
{
    private static ModelCatalogOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new ModelCatalogOptions();
        configuration.GetSection(ModelCatalogOptions.SectionName).Bind(options);
        return options;
    }

    private static List<ValidationResult> Validate(ModelCatalogOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }

    private static ProviderCatalog Catalog(ModelCatalogOptions table, params string[] upstreams)
    {
        var services = new ServiceCollection();
        foreach (var name in new[] { "synthetic", "synthetic-fail" }.Concat(upstreams))
        {
            services.AddKeyedSingleton<IChatClient>(name, new ScriptedChatClient());
        }

        var upstreamOptions = new OpenAiUpstreamOptions { Endpoint = new Uri("http://127.0.0.1:1/v1"), Model = "upstream-default", Timeout = TimeSpan.FromSeconds(7) };
        return new ProviderCatalog(services.BuildServiceProvider(), new FixedOptionsMonitor<ModelCatalogOptions>(table),
            new FixedOptionsMonitor<OpenAiUpstreamOptions>(upstreamOptions), new OpenAiUpstreamNames(upstreams));
    }

    [Fact]
    public void ConfiguredRoutesAndFallbacksBindBesideTheShippedSyntheticRoutes()
    {
        var options = Bind(new()
        {
            ["Inference:Models:llama:Provider"] = "ollama",
            ["Inference:Models:llama:UpstreamModel"] = "llama3.2:1b",
            ["Inference:Models:llama:Fallbacks:0"] = "synthetic-fail",
            ["Inference:Models:llama:Fallbacks:1"] = "synthetic",
        });

        Assert.Equal(["llama", "synthetic", "synthetic-fail", "synthetic-reasoning", "synthetic-stall"], options.Models.Keys.Order());
        Assert.Equal("ollama", options.Models["llama"].Provider);
        Assert.Equal("llama3.2:1b", options.Models["llama"].UpstreamModel);
        Assert.Equal(["synthetic-fail", "synthetic"], options.Models["llama"].Fallbacks);
        Assert.Empty(Validate(options));
    }

    [Theory]
    [InlineData("nonexistent")]
    [InlineData("llama")]
    public void AFallbackMustNameAnotherRoutedModel(string fallback)
    {
        var options = Bind(new()
        {
            ["Inference:Models:llama:Provider"] = "ollama",
            ["Inference:Models:llama:Fallbacks:0"] = fallback,
        });

        var error = Assert.Single(Validate(options));
        Assert.Contains($"'{fallback}'", error.ErrorMessage);
    }

    [Fact]
    public void TheRoutesProviderComesFirstThenEachFallbacksProviderInOrder()
    {
        var table = Bind(new()
        {
            ["Inference:Models:primary:Provider"] = "up-a",
            ["Inference:Models:primary:UpstreamModel"] = "model-a",
            ["Inference:Models:primary:Fallbacks:0"] = "second",
            ["Inference:Models:primary:Fallbacks:1"] = "nowhere",
            ["Inference:Models:primary:Fallbacks:2"] = "again",
            ["Inference:Models:primary:Fallbacks:3"] = "synthetic",
            ["Inference:Models:second:Provider"] = "up-b",
            ["Inference:Models:nowhere:Provider"] = "not-registered",
            // The same provider and upstream model as the primary: not worth a second try.
            ["Inference:Models:again:Provider"] = "up-a",
            ["Inference:Models:again:UpstreamModel"] = "model-a",
        });

        var candidates = Catalog(table, "up-a", "up-b").Resolve("primary");

        Assert.NotNull(candidates);
        Assert.Equal(["primary", "second", "synthetic"], candidates.Select(c => c.Model));
        Assert.Equal(["up-a", "up-b", "synthetic"], candidates.Select(c => c.Provider));
        // Upstreams send the route's upstream model, else their own; built-in providers get the public name.
        Assert.Equal(["model-a", null, "synthetic"], candidates.Select(c => c.UpstreamModel));
        Assert.Equal([TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(7), null], candidates.Select(c => c.AttemptTimeout));
    }

    [Fact]
    public void AnUnknownModelOrProviderResolvesToNothing()
    {
        var catalog = Catalog(Bind(new() { ["Inference:Models:orphan:Provider"] = "not-registered" }));

        Assert.Null(catalog.Resolve("no-such-model"));
        Assert.Null(catalog.Resolve("orphan"));
        Assert.NotNull(catalog.Resolve("synthetic"));
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, true, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, true, true)]
    [InlineData(HttpStatusCode.InternalServerError, false, true)]
    [InlineData(HttpStatusCode.BadGateway, false, true)]
    [InlineData(HttpStatusCode.BadRequest, false, false)]
    [InlineData(HttpStatusCode.Unauthorized, false, false)]
    public void StatusFailuresAreRetriedOnlyFor429And503(HttpStatusCode status, bool retryable, bool countsAgainstUpstream)
    {
        var failure = ProviderFailure.Classify(new HttpRequestException("x", null, status), attemptTimedOut: false);

        Assert.Equal((int)status, failure.Status);
        Assert.Equal(retryable, failure.Retryable);
        Assert.Equal(countsAgainstUpstream, failure.CountsAgainstUpstream);
    }

    [Fact]
    public void ConnectionFailuresAndTimeoutsAreRetriedAndMalformedResponsesAreNot()
    {
        Assert.Equal(FailureKind.Connection, ProviderFailure.Classify(new HttpRequestException("refused", new IOException("reset")), false).Kind);
        Assert.Equal(FailureKind.Connection, ProviderFailure.Classify(new IOException("The response ended prematurely."), false).Kind);
        Assert.Equal(FailureKind.Timeout, ProviderFailure.Classify(new TaskCanceledException(), attemptTimedOut: true).Kind);
        Assert.True(ProviderFailure.Classify(new IOException(), false).Retryable);

        var malformed = ProviderFailure.Classify(new JsonException("bad chunk"), false);
        Assert.Equal(FailureKind.Malformed, malformed.Kind);
        Assert.False(malformed.Retryable);
        Assert.True(malformed.CountsAgainstUpstream);
    }

    [Theory]
    [InlineData("1500", null, 1500)]
    [InlineData(null, "2", 2000)]
    [InlineData("-1", "3", 3000)]
    [InlineData("NaN", null, null)]
    [InlineData("soon", "later", null)]
    [InlineData(null, "Wed, 21 Oct 2015 07:28:10 GMT", 10_000)]
    [InlineData(null, "Wed, 21 Oct 2015 07:27:00 GMT", 0)]
    public void RetryAfterIsReadFromMillisecondsSecondsOrADate(string? milliseconds, string? retryAfter, int? expectedMilliseconds)
    {
        var now = new DateTimeOffset(2015, 10, 21, 7, 28, 0, TimeSpan.Zero);

        var delay = ProviderFailure.ParseRetryAfter(milliseconds, retryAfter, now);

        Assert.Equal(expectedMilliseconds, (int?)delay?.TotalMilliseconds);
    }

    [Theory]
    [InlineData("1e400", null)]
    [InlineData("Infinity", null)]
    [InlineData("99999999999999999999", null)]
    [InlineData(null, "99999999999999999999999999999")]
    [InlineData(null, "Fri, 31 Dec 9999 23:59:59 GMT")]
    public void AHugeRetryAfterIsHeldToADayRatherThanOverflowing(string? milliseconds, string? retryAfter)
    {
        var delay = ProviderFailure.ParseRetryAfter(milliseconds, retryAfter, DateTimeOffset.UtcNow);

        Assert.Equal(TimeSpan.FromDays(1), delay);
    }

    [Theory]
    [InlineData("Model", "")]
    [InlineData("Endpoint", "localhost:11434/v1")]
    [InlineData("Timeout", "00:00:00")]
    public async Task AnInvalidUpstreamStopsTheWorkerAtStartup(string key, string value)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = "127.0.0.1:1,abortConnect=false",
            ["Providers:OpenAI:local:Endpoint"] = "http://localhost:11434/v1",
            ["Providers:OpenAI:local:Model"] = "llama3.2:1b",
        };
        settings[$"Providers:OpenAI:local:{key}"] = value;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddWorkerServices();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        Assert.Equal("local", error.OptionsName);
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void AnUpstreamMayNotTakeABuiltInProvidersName()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = "127.0.0.1:1",
            ["Providers:OpenAI:synthetic:Endpoint"] = "http://localhost:11434/v1",
        });

        Assert.Throws<InvalidOperationException>(() => builder.AddWorkerServices());
    }
}
