using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Registry;
using StackExchange.Redis;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.Streaming;

/// <summary>
/// Follows one token stream: reads what is there, then sleeps until a wake-up names it (<see cref="WakeDispatcher"/>),
/// and reads again from the last id it returned, together with every other stream woken meanwhile
/// (<see cref="StreamReads"/>). An idle stream costs no Redis command but one at each
/// heartbeat, which renews the client's attach lease and checks that the stream still exists; a flowing one
/// renews its lease once per heartbeat interval. Reads are idempotent, so a Redis blip is retried rather than
/// ending the client's stream, and every follower re-reads when a connection is restored, since wake-ups
/// published meanwhile are lost.
/// </summary>
internal sealed class TokenStreamTailer
{
    private readonly IConnectionMultiplexer _redis;
    private readonly StreamReads _reads;
    private readonly WakeDispatcher _wakeUps;
    private readonly StreamAttachments _attachments;
    private readonly ResiliencePipeline _retry;
    private readonly IOptionsMonitor<StreamingOptions> _options;
    private readonly ConcurrentDictionary<WakeSignal, byte> _following = new();

    public TokenStreamTailer(IConnectionMultiplexer redis, StreamReads reads, WakeDispatcher wakeUps, StreamAttachments attachments, ResiliencePipelineProvider<string> pipelines,
        IOptionsMonitor<StreamingOptions> options)
    {
        _redis = redis;
        _reads = reads;
        _wakeUps = wakeUps;
        _attachments = attachments;
        _retry = pipelines.GetPipeline(RedisFaults.RetryPipeline);
        _options = options;
        redis.ConnectionRestored += (_, e) => OnRestored(e.ConnectionType);
    }

    /// <summary>
    /// Yields batches of entries after <paramref name="afterId"/> (from the start when null), the last batch
    /// ending with the <c>end</c> entry. An empty batch means the heartbeat interval passed with nothing new.
    /// The sequence also ends when the stream no longer exists (expired, never created, or lost with a Redis
    /// restart), or when the client resumes after the end itself (<see cref="TailProgress.ResumedAfterEnd"/>).
    /// <paramref name="lease"/>, when the client has one, is renewed while the sequence is enumerated.
    /// </summary>
    public async IAsyncEnumerable<StreamEntry[]> TailAsync(string id, string? afterId, AttachLease? lease, TailProgress progress,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var db = _redis.GetDatabase();
        var key = RedisKeys.Tokens(id);
        var signal = new WakeSignal();
        // Registered before the first read, so nothing appended after that read goes unnoticed.
        using var registration = await _wakeUps.RegisterAsync(id, signal);
        _following.TryAdd(signal, 0);
        try
        {
            RedisValue after = afterId;
            var first = true;
            var renewed = Stopwatch.GetTimestamp();
            while (true)
            {
                signal.Reset();
                if (lease is not null && Stopwatch.GetElapsedTime(renewed) >= _options.CurrentValue.HeartbeatInterval)
                {
                    // Tokens are flowing, so no heartbeat comes round to renew the lease.
                    await RenewAsync(id, lease, cancellationToken);
                    renewed = Stopwatch.GetTimestamp();
                }

                var entries = await _retry.ExecuteAsync(static async (s, ct) => await s.reads.ReadAsync(s.key, s.after, ct),
                    (reads: _reads, key, after), cancellationToken);
                if (entries.Length > 0)
                {
                    first = false;
                    var end = Array.FindIndex(entries, IsEnd);
                    if (end >= 0)
                    {
                        yield return end == entries.Length - 1 ? entries : entries[..(end + 1)];
                        yield break;
                    }

                    yield return entries;
                    after = entries[^1].Id;
                    if (entries.Length == StreamReads.EntriesPerStream)
                    {
                        // A full read: more may be there already.
                        continue;
                    }

                    // A short read took everything appended before it; what comes after it sets the signal (reset
                    // before the read), so waiting now loses nothing and saves the empty read that would follow.
                }
                else
                {
                    if (first && afterId is not null)
                    {
                        first = false;
                        // Resuming after the last event: when that was the end, there is nothing left to wait for.
                        var last = await _retry.ExecuteAsync(static async (s, ct) => await s.db.StreamRangeAsync(s.key, "-", "+", 1, Order.Descending).WaitAsync(ct),
                            (db, key), cancellationToken);
                        if (last.Length > 0 && IsEnd(last[0]))
                        {
                            progress.ResumedAfterEnd = true;
                            yield break;
                        }
                    }

                    // After a reconnect an empty read may mean the stream went with a Redis restart: look at once.
                    if (signal.TakeRestored() && !await RenewAsync(id, lease, cancellationToken))
                    {
                        yield break;
                    }
                }

                if (!await signal.WaitAsync(_options.CurrentValue.HeartbeatInterval, cancellationToken))
                {
                    renewed = Stopwatch.GetTimestamp();
                    if (!await RenewAsync(id, lease, cancellationToken))
                    {
                        yield break;
                    }

                    yield return [];
                }
            }
        }
        finally
        {
            _following.TryRemove(signal, out _);
        }
    }

    private Task<bool> RenewAsync(string id, AttachLease? lease, CancellationToken cancellationToken) =>
        _retry.ExecuteAsync(static async (s, ct) => await s.attachments.RenewAsync(s.id, s.lease, ct), (attachments: _attachments, id, lease), cancellationToken).AsTask();

    /// <summary>
    /// Every follower reads again, since wake-ups published while a connection was down are lost. A restored
    /// subscription connection has its channels subscribed again only after the event: a wake-up published in between
    /// is lost too, so once a PING on that connection (which follows the re-subscription) is answered, every follower
    /// reads once more. The PING's failure needs nothing: the next restore does the same.
    /// </summary>
    private void OnRestored(ConnectionType connection)
    {
        WakeAllAfterRestore();
        if (connection == ConnectionType.Subscription)
        {
            _ = _redis.GetSubscriber().PingAsync().ContinueWith(static (ping, tailer) =>
            {
                // Observed, so a failed PING is not reported as unobserved; the wake-up is wanted either way.
                _ = ping.Exception;
                ((TokenStreamTailer)tailer!).WakeAllAfterRestore();
            }, this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    private void WakeAllAfterRestore()
    {
        foreach (var signal in _following.Keys)
        {
            signal.SetRestored();
        }
    }

    internal static bool IsEnd(StreamEntry entry) => entry[StreamFields.Event] == EventNames.End;

    /// <summary>The reason of an end entry (for telemetry), read from its envelope.</summary>
    internal static string EndReason(StreamEntry end) =>
        EnvelopeFields.String(((ReadOnlyMemory<byte>)end[StreamFields.Data]).Span, "reason"u8) ?? "unknown";
}

/// <summary>What a tail learned besides its entries.</summary>
internal sealed class TailProgress
{
    /// <summary>The client resumed after the stream's end event: the stream is complete for it.</summary>
    public bool ResumedAfterEnd { get; set; }
}
