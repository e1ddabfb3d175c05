namespace VixAspire.Worker.Providers;

/// <summary>
/// Cuts streamed text at the first occurrence of any stop sequence, wherever the chunk boundaries fall. Text is
/// released as soon as it cannot be part of a stop sequence; only the tail that could still become one is held
/// back (at most the longest sequence's length less one character). Once a sequence has completed, the text
/// before it is the last released and nothing more is. Not thread-safe: one per response.
/// </summary>
internal sealed class StopSequenceCutter
{
    private readonly string[] _sequences;
    private readonly int _longest;
    private string _held = "";

    public StopSequenceCutter(IEnumerable<string> sequences)
    {
        _sequences = [.. sequences.Where(s => s.Length > 0).Distinct(StringComparer.Ordinal)];
        ArgumentOutOfRangeException.ThrowIfZero(_sequences.Length, nameof(sequences));
        _longest = _sequences.Max(s => s.Length);
    }

    /// <summary>A stop sequence has completed: nothing after it is released.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Text taken but not yet released, since it could still be the start of a stop sequence.</summary>
    public int HeldLength => _held.Length;

    /// <summary>
    /// Takes the next chunk; returns the text that can be released now. When a stop sequence completes with it,
    /// <see cref="Stopped"/> is set and the return is the rest of the text before that sequence.
    /// </summary>
    public string Push(string chunk)
    {
        if (Stopped || chunk.Length == 0)
        {
            return "";
        }

        var window = _held.Length == 0 ? chunk : string.Concat(_held, chunk);
        // The held tail held no whole sequence, so one can only end within the new chunk; the earliest start wins.
        var cut = -1;
        foreach (var sequence in _sequences)
        {
            var at = window.IndexOf(sequence, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
            }
        }

        if (cut >= 0)
        {
            Stopped = true;
            _held = "";
            return window[..cut];
        }

        var hold = HoldLength(window);
        _held = hold == 0 ? "" : window[^hold..];
        return hold == 0 ? window : window[..^hold];
    }

    /// <summary>Releases whatever is held: the text ended (or no more of it will be read) before a sequence completed.</summary>
    public string Flush()
    {
        var held = _held;
        _held = "";
        return Stopped ? "" : held;
    }

    /// <summary>The longest tail of <paramref name="window"/> that is a proper prefix of some stop sequence.</summary>
    private int HoldLength(string window)
    {
        for (var length = Math.Min(_longest - 1, window.Length); length > 0; length--)
        {
            var tail = window.AsSpan(window.Length - length);
            foreach (var sequence in _sequences)
            {
                if (sequence.Length > length && sequence.AsSpan(0, length).SequenceEqual(tail))
                {
                    return length;
                }
            }
        }

        return 0;
    }
}
