using System.Text;
using VixAspire.Worker.Generation;

namespace VixAspire.Worker.Tests;

public class TokenSplitterTests
{
    private static List<string> Split(string text, int maxBytes)
    {
        var pieces = new List<string>();
        var rest = text.AsMemory();
        while (rest.Length > 0)
        {
            var take = TokenSplitter.FitPrefix(rest.Span, maxBytes);
            pieces.Add(rest[..take].ToString());
            rest = rest[take..];
        }

        return pieces;
    }

    [Theory]
    [InlineData("short", 16)]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 16)]
    [InlineData("ééééééééééééééééééééééééééééééééééééééééé", 16)]
    [InlineData("😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", 17)]
    [InlineData("mixed ascii é 中文 😀 and more text to go past the cap 中文中文中文", 16)]
    public void PiecesFitTheCapKeepOrderAndLoseNothing(string text, int maxBytes)
    {
        var pieces = Split(text, maxBytes);

        Assert.Equal(text, string.Concat(pieces));
        Assert.All(pieces, p => Assert.InRange(Encoding.UTF8.GetByteCount(p), 1, maxBytes));
        Assert.All(pieces, p => Assert.False(char.IsHighSurrogate(p[^1]), "a piece ends inside a surrogate pair"));
    }

    [Fact]
    public void AFourKilobyteCapSplitsTenKilobytesIntoThreeEvents()
    {
        var pieces = Split(new string('z', 10_000), 4096);

        Assert.Equal([4096, 4096, 1808], pieces.Select(p => p.Length));
    }
}
