using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using VixAspire.TestSupport;
using static Microsoft.Playwright.Assertions;

namespace VixAspire.DemoPage.Tests;

/// <summary>
/// The gateway's demo page in headless Chromium, against the real gateway, StreamApi, a worker and
/// redis-server. The synthetic model sends a token every 50 ms, so a 60-token answer streams for about 3 s:
/// long enough to watch it arrive, stop it, or cut its connection midway.
/// </summary>
public sealed class DemoPageTests(DemoPageTests.Fixture fixture, ChromiumFixture chromium)
    : IClassFixture<DemoPageTests.Fixture>, IClassFixture<ChromiumFixture>
{
    private const int MaxTokens = 60;

    public sealed class Fixture : ServicesFixture
    {
        public Uri Gateway => Services.GatewayAddress!;

        public override async ValueTask InitializeAsync() => await StartAsync(new Dictionary<string, string?>
        {
            ["Providers:Synthetic:TokenDelay"] = "00:00:00.050",
        });
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    static DemoPageTests() => SetDefaultExpectTimeout(20_000);

    [Fact]
    public async Task TokensAppearWhileTheStreamRunsAndTheFinalTextIsTheStreamsText()
    {
        await using var context = await NewContextAsync();
        var page = await OpenAsync(context);

        await SendAsync(page, "Tell me about rivers.", "synthetic", MaxTokens);

        // Some tokens are on screen, with their stats, while the stream is still running.
        await page.WaitForFunctionAsync(
            "() => Number(document.getElementById('count').textContent) >= 3 && document.getElementById('status').dataset.state === 'streaming'",
            null, new PageWaitForFunctionOptions { Timeout = 20_000 });
        await Expect(page.Locator("#output")).Not.ToBeEmptyAsync();
        await Expect(page.Locator("#ttft")).ToHaveTextAsync(new Regex(@"^\d+(\.\d+)? m?s$"));

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "done");
        await Expect(page.Locator("#end-reason")).ToHaveTextAsync("length");
        await Expect(page.Locator("#count")).ToHaveTextAsync(MaxTokens.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator("#tps")).ToHaveTextAsync(new Regex(@"^\d+\.\d$"));
        await AssertPageShowsTheWholeStreamAsync(page);

        await SaveScreenshotAsync(page, "demo-page-done");
    }

    [Fact]
    public async Task StopCancelsTheStreamAndShowsTheStoppedState()
    {
        await using var context = await NewContextAsync();
        var page = await OpenAsync(context);

        await SendAsync(page, "A long answer, please.", "synthetic", MaxTokens);
        await WaitForTokensAsync(page, 5);
        await page.GetByRole(AriaRole.Button, new() { Name = "Stop" }).ClickAsync();

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "stopped");
        await Expect(page.Locator("#end-reason")).ToHaveTextAsync("cancelled");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Stop" })).ToBeDisabledAsync();
        var events = await AssertPageShowsTheWholeStreamAsync(page);
        Assert.Equal("cancelled", events.EndReason());
        Assert.InRange(events.Count(e => e.EventType == "token"), 5, MaxTokens - 1);

        await SaveScreenshotAsync(page, "demo-page-stopped");
    }

    [Fact]
    public async Task ADroppedConnectionResumesWithoutAGapOrADuplicate()
    {
        await using var network = new NetworkCut(fixture.Gateway);
        await using var context = await NewContextAsync(network.Address);
        var page = await OpenAsync(context);

        await SendAsync(page, "Keep going through the outage.", "synthetic", MaxTokens);
        await WaitForTokensAsync(page, 5);

        network.GoDown();
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "reconnecting");
        var tokensWhenCut = await CountAsync(page, "#count");
        // Stay down until the page has tried again and failed at least once: the backoff, not luck, gets it back.
        await network.FirstRefusal.WaitAsync(Bound, Ct);
        network.ComeBack();

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "done");
        await Expect(page.Locator("#count")).ToHaveTextAsync(MaxTokens.ToString(CultureInfo.InvariantCulture));
        Assert.True(network.ConnectionsCut >= 1, "the cut reset no connection");
        Assert.InRange(tokensWhenCut, 5, MaxTokens - 1);
        Assert.InRange(await CountAsync(page, "#reconnects"), 2, 20);
        await AssertPageShowsTheWholeStreamAsync(page);

        await SaveScreenshotAsync(page, "demo-page-resumed");
    }

    [Fact]
    public async Task AStreamErrorShowsItsCodeAndMessageThenTheEnd()
    {
        await using var context = await NewContextAsync();
        var page = await OpenAsync(context);

        // synthetic-fail sends three tokens, then an inference.error, then the end (reason error).
        await SendAsync(page, "This one fails.", "synthetic-fail", MaxTokens);

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "error");
        await Expect(page.Locator("#end-reason")).ToHaveTextAsync("error");
        var events = await AssertPageShowsTheWholeStreamAsync(page);
        var error = Assert.Single(events, e => e.EventType == "error").Payload;
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync(
            $"{error.GetProperty("code").GetString()}: {error.GetProperty("message").GetString()}");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send" })).ToBeEnabledAsync();
    }

    [Fact]
    public async Task ARefusedRequestShowsTheProblemsTitleAndDetail()
    {
        await using var context = await NewContextAsync();
        var page = await OpenAsync(context);

        await SendAsync(page, "Too few tokens.", "synthetic", 0);

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "error");
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("400 Invalid request: 'max_tokens' must be between 1 and 32768.");
        await Expect(page.Locator("#stream-id")).ToHaveTextAsync("–");
        await Expect(page.Locator("#output")).ToBeEmptyAsync();
    }

    [Fact]
    public async Task AnApiKeyStaysInTheBrowserAndTravelsOnlyAsABearerToken()
    {
        const string Key = "vix-demo-key-7f3a";
        await using var context = await NewContextAsync();
        var page = await OpenAsync(context);
        var requests = new List<IRequest>();
        page.Request += (_, request) => requests.Add(request);

        await page.GetByText("API key").First.ClickAsync();
        await page.GetByLabel("API key").FillAsync(Key);
        await page.GetByLabel("API key").BlurAsync();
        await SendAsync(page, "With a key.", "synthetic", 5);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "done");

        // The models reload with the new key, then the stream: both to this origin and with the header.
        var apiCalls = requests.Where(r => r.Url.Contains("/v1/", StringComparison.Ordinal) || r.Url.Contains("/infer/", StringComparison.Ordinal)).ToList();
        Assert.Contains(apiCalls, r => r.Url.EndsWith("/v1/models", StringComparison.Ordinal));
        Assert.Contains(apiCalls, r => r.Method == "POST" && r.Url.EndsWith("/infer/stream", StringComparison.Ordinal));
        foreach (var request in requests)
        {
            Assert.StartsWith(fixture.Gateway.ToString(), request.Url, StringComparison.Ordinal);
            Assert.DoesNotContain(Key, request.Url, StringComparison.Ordinal);
            Assert.DoesNotContain(Key, request.PostData ?? "", StringComparison.Ordinal);
        }

        foreach (var request in apiCalls)
        {
            var headers = await request.AllHeadersAsync();
            Assert.Equal($"Bearer {Key}", headers["authorization"]);
        }

        // Kept across a reload (local storage), and gone after Forget.
        await page.ReloadAsync();
        await Expect(page.GetByLabel("API key")).ToHaveValueAsync(Key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Forget" }).ClickAsync();
        await Expect(page.GetByLabel("API key")).ToHaveValueAsync("");
        Assert.Null(await page.EvaluateAsync<string?>("() => localStorage.getItem('vixaspire.apiKey')"));
    }

    [Fact]
    public async Task OnANarrowScreenThePageFitsWithoutScrollingSideways()
    {
        await using var context = await NewContextAsync(width: 360, height: 780);
        var page = await OpenAsync(context);

        await SendAsync(page, "Small screen.", "synthetic", 20);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "done");
        await AssertPageShowsTheWholeStreamAsync(page);

        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"),
            "the page is wider than a 360 px screen");
        await SaveScreenshotAsync(page, "demo-page-narrow");
    }

    private static async Task<int> CountAsync(IPage page, string selector) =>
        int.Parse(await page.Locator(selector).TextContentAsync() ?? "", CultureInfo.InvariantCulture);

    private async Task<IBrowserContext> NewContextAsync(Uri? address = null, int width = 1100, int height = 900) =>
        await chromium.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = (address ?? fixture.Gateway).ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });

    /// <summary>Opens the page and waits for the model list from <c>GET /v1/models</c>.</summary>
    private static async Task<IPage> OpenAsync(IBrowserContext context)
    {
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync("/");
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        await Expect(page.Locator("#model option[value='synthetic']")).ToHaveCountAsync(1);
        return page;
    }

    private static async Task SendAsync(IPage page, string prompt, string model, int maxTokens)
    {
        await page.GetByLabel("Prompt").FillAsync(prompt);
        await page.GetByLabel("Model").SelectOptionAsync(model);
        await page.GetByLabel("Max tokens").FillAsync(maxTokens.ToString(CultureInfo.InvariantCulture));
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
    }

    private static async Task WaitForTokensAsync(IPage page, int count) =>
        await page.WaitForFunctionAsync(
            "n => Number(document.getElementById('count').textContent) >= n", count,
            new PageWaitForFunctionOptions { Timeout = 20_000 });

    /// <summary>
    /// Replays the page's stream from Redis through the gateway and checks that the page shows exactly its
    /// text once the typing effect has caught up: a lost token or a repeated one would show as a difference.
    /// </summary>
    private async Task<List<ServerEvent>> AssertPageShowsTheWholeStreamAsync(IPage page)
    {
        var id = await page.Locator("#stream-id").TextContentAsync();
        Assert.Matches("^[0-9a-f]{32}$", id);
        using var client = RunningServices.CreateClient(fixture.Gateway);
        using var response = await client.GetAsync($"/infer/stream/{id}", HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        response.EnsureSuccessStatusCode();
        var events = await response.ReadAllEventsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("end", events[^1].EventType);

        // Exact text (Playwright's text assertions would normalise whitespace); bounded by the wait's timeout.
        var expected = events.Text();
        try
        {
            await page.WaitForFunctionAsync("t => document.getElementById('output').textContent === t", expected,
                new PageWaitForFunctionOptions { Timeout = 20_000 });
        }
        catch (TimeoutException)
        {
            // The assertion below reports the difference.
        }

        Assert.Equal(expected, await page.Locator("#output").TextContentAsync());
        return events;
    }

    private static async Task SaveScreenshotAsync(IPage page, string name)
    {
        var directory = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;
        var path = Path.Combine(directory, $"{name}.png");
        var png = await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.Current.AddAttachment(name, png, "image/png");
        TestContext.Current.TestOutputHelper?.WriteLine($"screenshot: {path}");
    }
}
