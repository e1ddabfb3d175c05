namespace VixAspire.LoadTest;

/// <summary>What one load-test run sends: how many streams, how fast, and what each one asks for.</summary>
internal sealed record LoadTestSettings
{
    public const string DefaultPrompt = "Tell me about streaming tokens through Redis";

    public required Uri Url { get; init; }

    public int Streams { get; init; } = 100;

    public int Concurrency { get; init; } = 10;

    /// <summary>New streams per second; 0 starts them as fast as the concurrency allows.</summary>
    public double Rate { get; init; }

    /// <summary>No new stream starts after this; streams already running finish.</summary>
    public TimeSpan? Duration { get; init; }

    public string Model { get; init; } = "synthetic";

    public int MaxTokens { get; init; } = 64;

    public string Prompt { get; init; } = DefaultPrompt;

    /// <summary>Streams run before the measured ones and left out of the report.</summary>
    public int WarmupStreams { get; init; }

    // The synthetic model's text depends on the prompt: varying it keeps streams from being identical.
    public string PromptFor(int index) => $"{Prompt} (stream {index})";
}
