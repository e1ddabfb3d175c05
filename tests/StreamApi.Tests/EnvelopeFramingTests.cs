using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using StackExchange.Redis;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.Tests;

public class EnvelopeFramingTests
{
    public static TheoryData<string> HostileTexts => new()
    {
        "line\nbreak",
        "carriage\rreturn",
        "crlf\r\n\r\nend",
        "\ndata: injected\n\n",
        "event: end\ndata: {}\n\n",
        "id: 999-0\n",
        "quote \" and backslash \\",
        "nul\0byte",
        "lone high \uD800 surrogate",
        "lone low \uDC00 surrogate",
        "pair 😀 ok",
        ": comment\n",
        "\u2028\u2029 separators",
        "",
    };

    [Theory]
    [MemberData(nameof(HostileTexts))]
    public void TokenEnvelopeIsOneLineOfJsonThatKeepsTheText(string text)
    {
        var envelope = Envelopes.Token(text, 7);

        Assert.DoesNotContain((byte)'\n', envelope);
        Assert.DoesNotContain((byte)'\r', envelope);
        using var json = JsonDocument.Parse(envelope);
        Assert.Equal("inference.token", json.RootElement.GetProperty("type").GetString());
        Assert.Equal(Envelopes.Sanitize(text), json.RootElement.GetProperty("payload").GetProperty("text").GetString());
        Assert.Equal(7, json.RootElement.GetProperty("payload").GetProperty("index").GetInt32());
    }

    [Theory]
    [MemberData(nameof(HostileTexts))]
    public async Task HostileTokenTextStaysOneSseEvent(string text)
    {
        var pipe = new Pipe();
        var entry = new StreamEntry("1-0", [new(StreamFields.Event, EventNames.Token), new(StreamFields.Data, Envelopes.Token(text, 0))]);
        foreach (var item in new StreamBatch([entry]))
        {
            SseWriter.Write(pipe.Writer, item);
        }

        SseWriter.Write(pipe.Writer, StreamItem.Heartbeat);
        await pipe.Writer.CompleteAsync();

        var items = new List<SseItem<string>>();
        var parser = SseParser.Create(pipe.Reader.AsStream());
        await foreach (var item in parser.EnumerateAsync(TestContext.Current.CancellationToken))
        {
            items.Add(item);
        }

        var only = Assert.Single(items);
        Assert.Equal("token", only.EventType);
        Assert.Equal("1-0", parser.LastEventId);
        using var json = JsonDocument.Parse(only.Data);
        Assert.Equal(Envelopes.Sanitize(text), json.RootElement.GetProperty("payload").GetProperty("text").GetString());
    }

    [Fact]
    public void LoneSurrogatesBecomeReplacementCharactersAndPairsSurvive()
    {
        Assert.Equal("a\uFFFDb\uFFFD😀", Envelopes.Sanitize("a\uD800b\uDC00😀"));
        Assert.Same("plain", Envelopes.Sanitize("plain"));
    }

    [Fact]
    public void EnvelopesMatchTheContractShapes()
    {
        Assert.Equal("""{"type":"inference.start","payload":{"id":"abc","model":"synthetic"}}""",
            Encoding.UTF8.GetString(Envelopes.Start("abc", "synthetic")));
        Assert.Equal("""{"type":"inference.token","payload":{"text":"hello","index":0}}""",
            Encoding.UTF8.GetString(Envelopes.Token("hello", 0)));
        Assert.Equal("""{"type":"inference.error","payload":{"code":"provider_timeout","message":"slow","retryable":true}}""",
            Encoding.UTF8.GetString(Envelopes.Error("provider_timeout", "slow", true)));
        Assert.Equal("""{"type":"inference.end","payload":{"reason":"stop","usage":{"output_tokens":5}}}""",
            Encoding.UTF8.GetString(Envelopes.End("stop", 5)));
    }

    [Fact]
    public async Task AnEntryWhoseDataHoldsALineBreakIsNotWritten()
    {
        var pipe = new Pipe();
        var entry = new StreamEntry("1-0", [new(StreamFields.Event, EventNames.Token), new(StreamFields.Data, "{\"a\":\n1}")]);

        Assert.True(StreamItem.TryRead(entry, out var item));
        var written = SseWriter.Write(pipe.Writer, item);
        await pipe.Writer.CompleteAsync();
        var result = await pipe.Reader.ReadAsync(TestContext.Current.CancellationToken);

        Assert.False(written);
        Assert.Equal(0, result.Buffer.Length);
    }
}
