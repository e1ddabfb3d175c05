using System.ComponentModel.DataAnnotations;

namespace VixAspire.Worker;

public sealed class WorkerOptions
{
    public const string SectionName = "Worker";

    /// <summary>
    /// Generations one worker runs at once, whatever their provider; it reads no more requests than it has room for.
    /// A generation mostly waits (on its provider, then on Redis), so the default is set by memory and fairness
    /// between workers, not by a model's capacity: each OpenAI-compatible upstream has its own, lower
    /// <c>MaxConcurrency</c>, and the synthetic provider, which is not a GPU, has none.
    /// </summary>
    [Range(1, 100_000)]
    public int MaxConcurrency { get; set; } = 4096;

    /// <summary>How long one blocking <c>XREADGROUP</c> waits on the worker's own connection.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30")]
    public TimeSpan BlockTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A pending request idle this long belongs to a worker presumed dead and is claimed.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ClaimIdleTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the worker renews its own pending requests and looks for orphaned ones.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan ClaimInterval { get; set; } = TimeSpan.FromSeconds(10);
}
