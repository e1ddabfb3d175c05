using System.Text;

namespace VixAspire.Worker.Generation;

/// <summary>Splits provider text into pieces of at most a number of UTF-8 bytes, never inside a surrogate pair.</summary>
internal static class TokenSplitter
{
    /// <summary>How many chars from the start of <paramref name="text"/> fit in <paramref name="maxBytes"/> UTF-8 bytes (at least one char or pair).</summary>
    public static int FitPrefix(ReadOnlySpan<char> text, int maxBytes)
    {
        // Every UTF-16 char encodes to at most 3 UTF-8 bytes (a pair: 4 bytes for 2 chars).
        if (text.Length * 3 <= maxBytes)
        {
            return text.Length;
        }

        var bytes = 0;
        var i = 0;
        while (i < text.Length)
        {
            var width = 1;
            int size;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                width = 2;
                size = 4;
            }
            else
            {
                size = text[i] switch
                {
                    < '\u0080' => 1,
                    < '\u0800' => 2,
                    _ => 3,
                };
            }

            if (bytes + size > maxBytes && i > 0)
            {
                break;
            }

            bytes += size;
            i += width;
        }

        return i;
    }

    public static int Utf8Length(ReadOnlySpan<char> text) => Encoding.UTF8.GetByteCount(text);
}
