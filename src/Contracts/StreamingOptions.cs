using System.ComponentModel.DataAnnotations;

namespace VixAspire.Contracts;

/// <summary>Limits of the public contract (the README lists their defaults), shared by the API (which enforces them at the edge) and the worker.</summary>
public sealed class StreamingOptions
{
    public const string SectionName = "Streaming";

    [Range(1024, 64 * 1024 * 1024)]
    public int MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Token text bytes per stream; the stream ends with reason <c>max_bytes</c> when reached.</summary>
    [Range(1, int.MaxValue)]
    public int MaxStreamBytes { get; set; } = 1024 * 1024;

    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromSeconds(120);

    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan FirstTokenTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>UTF-8 bytes of text per token event; larger provider chunks are split.</summary>
    [Range(16, 1024 * 1024)]
    public int MaxTokenEventBytes { get; set; } = 4 * 1024;

    /// <summary>How long a finished stream stays readable for resume and late attach.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan ResumeWindow { get; set; } = TimeSpan.FromMinutes(10);

    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan DisconnectGrace { get; set; } = TimeSpan.FromSeconds(5);

    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Streams one client (API key, else address) may have open at once; 0 for no limit.</summary>
    [Range(0, 1_000_000)]
    public int MaxConcurrentStreamsPerClient { get; set; } = 100;

    /// <summary>Approximate <c>MAXLEN</c> of a token stream: the token cap plus start, error and end.</summary>
    [Range(16, 10_000_000)]
    public int MaxStreamEntries { get; set; } = 40_000;

    /// <summary>Requests queued or running; beyond it <c>POST</c> answers 503 (the queue itself is never trimmed).</summary>
    [Range(16, 100_000_000)]
    public int MaxQueueLength { get; set; } = 100_000;

    /// <summary>How long a token stream may live before a worker ends it: duration, first token and resume.</summary>
    public TimeSpan InitialStreamTtl => MaxDuration + FirstTokenTimeout + ResumeWindow;
}
