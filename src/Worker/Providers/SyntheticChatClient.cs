using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace VixAspire.Worker.Providers;

public enum SyntheticBehavior
{
    /// <summary>Deterministic text, <c>max_tokens</c> tokens.</summary>
    Normal,

    /// <summary>Never yields a first token.</summary>
    Stall,

    /// <summary>Fails after <see cref="SyntheticProviderOptions.FailAfterTokens"/> tokens.</summary>
    Fail,
}

/// <summary>
/// The built-in provider: needs nothing outside the system, and gives the same text for the same prompt,
/// one word per token, paced by the configured delays.
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
        var count = options?.MaxOutputTokens ?? 128;
        var seed = Seed(messages);

        await DelayAsync(settings.FirstTokenDelay, cancellationToken);
        if (behavior == SyntheticBehavior.Stall)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, time, cancellationToken);
        }

        for (var i = 0; i < count; i++)
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

            yield return new ChatResponseUpdate(ChatRole.Assistant, TokenText(seed, i))
            {
                ModelId = options?.ModelId,
                FinishReason = i == count - 1 ? ChatFinishReason.Length : null,
            };
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
            foreach (var c in message.Text)
            {
                hash = (hash ^ c) * 16777619u;
            }
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
