using System.Net.WebSockets;
using System.Text.Json;

namespace VixAspire.TestSupport;

/// <summary>Reading the inference socket's messages as a client would: whole text messages, each a JSON object.</summary>
public static class WebSocketMessages
{
    /// <summary>Reads one whole text message (however many frames it spans) and parses it; every wait is bounded.</summary>
    public static async Task<JsonElement> ReceiveJsonAsync(this WebSocket socket, TimeSpan bound, CancellationToken cancellationToken)
    {
        using var message = new MemoryStream();
        var buffer = new byte[4096];
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken).AsTask().WaitAsync(bound, cancellationToken);
            if (result.MessageType != WebSocketMessageType.Text)
            {
                throw new InvalidOperationException($"Expected a text message, got {result.MessageType} ({socket.CloseStatus}).");
            }

            message.Write(buffer, 0, result.Count);
        }
        while (!result.EndOfMessage);

        return JsonDocument.Parse(message.ToArray()).RootElement.Clone();
    }
}
