using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;
using VixAspire.TestSupport;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// A new stream lost before its first read (Redis restarted without its data just after the start was written):
/// the follower's own ending still begins with <c>start</c>, so every stream keeps start first and end last.
/// Heartbeat 300 ms, so the loss is found within a heartbeat.
/// </summary>
public sealed class LostStreamTests(LostStreamTests.Fixture fixture) : IClassFixture<LostStreamTests.Fixture>
{
    public sealed class Fixture : ServicesFixture
    {
        public override async ValueTask InitializeAsync() =>
            await StartAsync(new Dictionary<string, string?> { ["Streaming:HeartbeatInterval"] = "00:00:00.300" }, workers: 0, gateway: false);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ANewStreamLostBeforeItsFirstReadStillGetsStartThenErrorThenEnd()
    {
        var id = RequestQueue.NewId();
        var slots = fixture.Services.GetApiService<ClientSlots>();
        var follower = fixture.Services.GetApiService<StreamFollower>();
        // As the start wrote it; the stream itself is gone (never written here).
        var slot = new StreamSlot(slots, "test", id, attachMember: null, NullLogger.Instance) { Start = Envelopes.Start(id, "synthetic") };

        var events = new List<(string Name, string Envelope)>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        await foreach (var batch in follower.FollowAsync(id, afterId: null, Stopwatch.GetTimestamp(), slot, deadline.Token))
        {
            foreach (var item in batch)
            {
                if (item.Kind != StreamItemKind.Heartbeat)
                {
                    events.Add((Encoding.UTF8.GetString(item.Name.Span), Encoding.UTF8.GetString(item.Envelope.Span)));
                }
            }
        }

        Assert.Equal([EventNames.Start, EventNames.Error, EventNames.End], events.Select(e => e.Name));
        Assert.Contains(id, events[0].Envelope, StringComparison.Ordinal);
        Assert.Contains("stream_lost", events[1].Envelope, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AResumedStreamThatIsLostGetsNoSecondStart()
    {
        var id = RequestQueue.NewId();
        var follower = fixture.Services.GetApiService<StreamFollower>();

        var names = new List<string>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        await foreach (var batch in follower.FollowAsync(id, afterId: "1-0", Stopwatch.GetTimestamp(), slot: null, deadline.Token))
        {
            foreach (var item in batch)
            {
                if (item.Kind != StreamItemKind.Heartbeat)
                {
                    names.Add(Encoding.UTF8.GetString(item.Name.Span));
                }
            }
        }

        Assert.Equal([EventNames.Error, EventNames.End], names);
    }
}
