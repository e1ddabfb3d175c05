using VixAspire.Worker.Queue;

namespace VixAspire.Worker.Tests;

/// <summary>When a partition's next orphan claim is due: an interval after the last, or at once after a full batch.</summary>
public sealed class ClaimRoundsTests
{
    [Fact]
    public void AFullBatchMakesTheNextRoundDueAtOnceAndAShortOneWaitsTheInterval()
    {
        var rounds = new ClaimRounds("q", TimeSpan.FromHours(1));
        Assert.False(rounds.Due);
        Assert.Equal("0-0", rounds.Cursor.ToString());

        rounds.Completed("5-0", full: true);
        Assert.True(rounds.Due);
        Assert.True(rounds.OrphansWaiting);
        Assert.Equal("5-0", rounds.Cursor.ToString());

        rounds.Completed("0-0", full: false);
        Assert.False(rounds.Due);
        Assert.False(rounds.OrphansWaiting);
    }

    [Fact]
    public void ARoundIsDueOnceTheIntervalHasPassed()
    {
        Assert.True(new ClaimRounds("q", TimeSpan.Zero).Due);
    }
}
