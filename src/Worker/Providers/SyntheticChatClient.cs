using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using VixAspire.Worker.Providers.Synthetic;

namespace VixAspire.Worker.Providers;

public enum SyntheticBehavior
{
    /// <summary>Deterministic text, <c>max_tokens</c> tokens.</summary>
    Normal,

    /// <summary>Never yields a first token.</summary>
    Stall,

    /// <summary>Fails after <see cref="SyntheticProviderOptions.FailAfterTokens"/> tokens.</summary>
    Fail,

    /// <summary>As <see cref="Normal"/>, after a few reasoning fragments.</summary>
    Reasoning,
}

/// <summary>
/// The built-in provider: needs nothing outside the system, and gives the same answer for the same request,
/// one word per token, paced by the configured delays. It calls tools, reports their results and answers in JSON
/// (<see cref="SyntheticReply"/>), so every feature can be shown without an upstream.
/// </summary>
public sealed class SyntheticChatClient(SyntheticBehavior behavior, IOptionsMonitor<SyntheticProviderOptions> settingsMonitor, TimeProvider time)
    : IChatClient
{
    private static readonly string[] Words =
    [
        "stream", "token", "river", "signal", "light", "quiet", "model", "answer", "gateway", "worker",
        "redis", "event", "flow", "spark", "north", "harbor", "amber", "cedar", "delta", "ember",
        "fable", "glacier", "horizon", "island", "juniper", "kernel", "lantern", "meadow", "nimbus", "orbit",
        "prism", "quartz", "ripple", "summit", "tundra", "umber", "valley", "willow", "xenon", "yonder",
        "zephyr", "atlas", "beacon", "canyon", "drift", "echo", "forge", "grove",
    ];

    private readonly ChatClientMetadata _metadata = new("synthetic", defaultModelId: "synthetic");

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var settings = settingsMonitor.CurrentValue;
        var conversation = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var updates = SyntheticReply.Updates(conversation, options, behavior == SyntheticBehavior.Reasoning);

        await DelayAsync(settings.FirstTokenDelay, cancellationToken);
        if (behavior == SyntheticBehavior.Stall)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, time, cancellationToken);
        }

        var i = 0;
        foreach (var update in updates)
        {
            if (i > 0)
            {
                await DelayAsync(settings.TokenDelay, cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();

            if (behavior == SyntheticBehavior.Fail && i == settings.FailAfterTokens)
            {
                throw new InvalidOperationException($"synthetic-fail failed on purpose after {i} tokens.");
            }

            update.ModelId = options?.ModelId;
            i++;
            yield return update;
        }
    }

    /// <summary>The text of token <paramref name="index"/> for a prompt with this seed.</summary>
    public static string TokenText(uint seed, int index)
    {
        var word = Words[(int)((seed + (uint)index * 2654435761u) % (uint)Words.Length)];
        return index == 0 ? word : string.Concat(" ", word);
    }

    /// <summary>FNV-1a over the conversation text: the same prompt always gives the same answer.</summary>
    public static uint Seed(IEnumerable<ChatMessage> messages)
    {
        var hash = 2166136261u;
        foreach (var message in messages)
        {
            hash = Fnv(hash, message.Text);
        }

        return hash;
    }

    /// <summary>FNV-1a over one text.</summary>
    public static uint Seed(string text) => Fnv(2166136261u, text);

    private static uint Fnv(uint hash, string text)
    {
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }

    private Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken) =>
        delay > TimeSpan.Zero ? Task.Delay(delay, time, cancellationToken) : Task.CompletedTask;

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey is null && serviceType == typeof(ChatClientMetadata) ? _metadata
        : null;

    public void Dispose()
    {
    }
}
