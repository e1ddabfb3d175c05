using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.Worker.Queue;

namespace VixAspire.Worker.Tests;

/// <summary>The queue reader's parse of a RESP2 <c>XREADGROUP</c> reply, and the request it reads from an entry, without Redis.</summary>
public sealed class QueueReaderTests
{
    private static readonly RedisKey Queue = "vix:{q1}:requests";

    [Fact]
    public void ANilReplyOfABlockThatTimedOutHoldsNoEntries()
    {
        Assert.Empty(QueueReader.Parse(RedisResult.Create(RedisValue.Null)));
        Assert.Empty(QueueReader.Parse(RedisResult.Create(Array.Empty<RedisResult>())));
    }

    [Fact]
    public void EveryEntryOfTheStreamIsParsedWithItsFieldsInOrder()
    {
        var reply = Reply(
            Entry("1-0", "id", "a", "body", "{}"),
            Entry("2-1", "id", "b", "body", "{\"x\":1}", "traceparent", "00-t-s-01"));

        var entries = QueueReader.Parse(reply);

        Assert.Equal(["1-0", "2-1"], entries.Select(e => e.Id.ToString()));
        Assert.Equal(["id", "body"], entries[0].Values.Select(v => v.Name.ToString()));
        Assert.Equal(["a", "{}"], entries[0].Values.Select(v => v.Value.ToString()));
        Assert.Equal("00-t-s-01", entries[1][StreamFields.TraceParent].ToString());
    }

    [Fact]
    public void AnEntryDeletedWhilePendingHasNoFields()
    {
        var reply = Reply(RedisResult.Create([RedisResult.Create((RedisValue)"3-0"), RedisResult.Create(RedisValue.Null)]));

        var entry = Assert.Single(QueueReader.Parse(reply));

        Assert.Equal("3-0", entry.Id.ToString());
        Assert.Empty(entry.Values);
    }

    [Fact]
    public void AnEntryIsReadIntoItsRequestAndKeepsItsFieldsForAHandBack()
    {
        var entry = Assert.Single(QueueReader.Parse(Reply(Entry("5-0",
            StreamFields.RequestId, "r1", StreamFields.RequestBody, "{\"model\":\"m\"}", StreamFields.TraceParent, "00-t-s-01",
            StreamFields.TraceState, "k=v", StreamFields.Client, "key:alice", "later", "kept"))));

        var request = QueueEntries.Read(Queue, entry);

        Assert.Equal(Queue, request.Queue);
        Assert.Equal("5-0", request.EntryId.ToString());
        Assert.Equal("r1", request.RequestId);
        Assert.Equal("{\"model\":\"m\"}", System.Text.Encoding.UTF8.GetString(request.Body.Span));
        Assert.Equal("00-t-s-01", request.TraceParent);
        Assert.Equal("k=v", request.TraceState);
        Assert.Equal("key:alice", request.Client);
        Assert.Equal(entry.Values, request.Fields);
    }

    [Fact]
    public void AnEntryWithoutOptionalFieldsReadsAsNoneAndOneWithoutIdAsEmpty()
    {
        var entry = Assert.Single(QueueReader.Parse(Reply(Entry("6-0", "other", "x"))));

        var request = QueueEntries.Read(Queue, entry);

        Assert.Equal("", request.RequestId);
        Assert.True(request.Body.IsEmpty);
        Assert.Null(request.TraceParent);
        Assert.Null(request.TraceState);
        Assert.Null(request.Client);
    }

    private static RedisResult Reply(params RedisResult[] entries) =>
        RedisResult.Create([RedisResult.Create([RedisResult.Create((RedisValue)Queue.ToString()), RedisResult.Create(entries)])]);

    private static RedisResult Entry(string id, params string[] fields) =>
        RedisResult.Create([RedisResult.Create((RedisValue)id), RedisResult.Create([.. fields.Select(f => RedisResult.Create((RedisValue)f))])]);
}
