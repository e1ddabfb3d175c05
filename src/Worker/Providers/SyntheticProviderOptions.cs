using System.ComponentModel.DataAnnotations;

namespace VixAspire.Worker.Providers;

public sealed class SyntheticProviderOptions
{
    public const string SectionName = "Providers:Synthetic";

    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan FirstTokenDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Delay between tokens: about a real model's pace by default, zero for load tests.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan TokenDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How many tokens <c>synthetic-fail</c> yields before it fails.</summary>
    [Range(0, 10_000)]
    public int FailAfterTokens { get; set; } = 3;
}
