using System.Buffers;
using System.Text;
using System.Text.Json;

namespace VixAspire.StreamApi.Inference;

/// <summary>
/// The request's <c>stop</c>, as OpenAI's chat completions take it: a string, or an array of up to
/// <see cref="MaxCount"/> strings; <c>null</c>, absent or <c>[]</c> mean none. Each sequence must be non-empty
/// text of at most <see cref="MaxChars"/> UTF-16 characters: the worker holds back that much of the answer
/// while it may still be the start of a stop sequence, so the bound keeps that hold short.
/// </summary>
internal static class StopSequences
{
    public const string Field = "stop";

    /// <summary>OpenAI's limit.</summary>
    public const int MaxCount = 4;

    /// <summary>OpenAI documents none; 256 is far above any stop sequence in use (a newline, a role marker, a closing tag).</summary>
    public const int MaxChars = 256;

    /// <summary>The sequences, or null when there are none; a mistake goes into <paramref name="errors"/> under <c>stop</c>.</summary>
    public static IReadOnlyList<string>? Read(JsonElement? stop, IDictionary<string, string[]> errors)
    {
        try
        {
            switch (stop)
            {
                case null or { ValueKind: JsonValueKind.Null }:
                    return null;
                case { ValueKind: JsonValueKind.String } single:
                    return Check(single.GetString()!, null, errors) ? [single.GetString()!] : null;
                case { ValueKind: JsonValueKind.Array } array when array.GetArrayLength() > MaxCount:
                    errors[Field] = [$"'stop' may hold at most {MaxCount} sequences."];
                    return null;
                case { ValueKind: JsonValueKind.Array } array:
                    var sequences = new List<string>(array.GetArrayLength());
                    foreach (var item in array.EnumerateArray())
                    {
                        if (item.ValueKind != JsonValueKind.String)
                        {
                            errors[Field] = [$"stop[{sequences.Count}] must be a string."];
                            return null;
                        }

                        if (!Check(item.GetString()!, sequences.Count, errors))
                        {
                            return null;
                        }

                        sequences.Add(item.GetString()!);
                    }

                    return sequences.Count == 0 ? null : sequences;
                default:
                    errors[Field] = [$"'stop' must be a string or an array of up to {MaxCount} strings."];
                    return null;
            }
        }
        catch (InvalidOperationException)
        {
            // Kept as raw JSON until here, so its strings are first decoded now: bytes that are not UTF-8, or an escaped
            // lone surrogate, are the client's mistake.
            errors[Field] = ["'stop' must be valid text: UTF-8, with no lone surrogate."];
            return null;
        }
    }

    private static bool Check(string sequence, int? index, IDictionary<string, string[]> errors)
    {
        var name = index is { } i ? $"stop[{i}]" : "'stop'";
        var error = sequence.Length == 0 ? $"{name} must not be empty."
            : sequence.Length > MaxChars ? $"{name} must be at most {MaxChars} characters."
            : !IsWellFormed(sequence) ? $"{name} must be well-formed text (no lone surrogate)."
            : null;
        if (error is not null)
        {
            errors[Field] = [error];
        }

        return error is null;
    }

    /// <summary>No lone surrogate: a cut before half a character would split the character before it.</summary>
    private static bool IsWellFormed(string text)
    {
        var rest = text.AsSpan();
        while (rest.Length > 0)
        {
            if (Rune.DecodeFromUtf16(rest, out _, out var used) != OperationStatus.Done)
            {
                return false;
            }

            rest = rest[used..];
        }

        return true;
    }
}
