using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace VixAspire.TestSupport;

/// <summary>
/// A stand-in upstream that answers in large chunks, as real providers sometimes do. The prompt says what to
/// send: <c>chunks:COUNTxBYTES</c> gives COUNT chunks of about BYTES bytes of UTF-8 (mixed one-, two-, three-
/// and four-byte characters), chunk i starting with its number so order can be checked.
/// </summary>
public static class ChunkyChatClient
{
    public const string Name = "chunky";

    public static void Register(IServiceCollection services) => services.AddKeyedSingleton<IChatClient>(Name, new ScriptedChatClient(Script));

    public static string Chunk(int index, int bytes)
    {
        var text = new StringBuilder(index.ToString("D6", CultureInfo.InvariantCulture)).Append('|');
        string[] alphabet = ["a", "é", "中", "😀", "\n", "\""];
        var i = 0;
        while (Encoding.UTF8.GetByteCount(text.ToString()) < bytes)
        {
            text.Append(alphabet[i++ % alphabet.Length]);
        }

        return text.ToString();
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Script(ScriptedCall call, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var spec = call.Prompt["chunks:".Length..].Split('x');
        var count = int.Parse(spec[0], CultureInfo.InvariantCulture);
        var bytes = int.Parse(spec[1], CultureInfo.InvariantCulture);
        for (var i = 0; i < count; i++)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, Chunk(i, bytes));
        }

        yield return new ChatResponseUpdate { FinishReason = ChatFinishReason.Stop };
    }
}
