using System.Net.WebSockets;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// One client's socket: a <see cref="SocketReceiver"/> that starts and cancels requests, the running
/// <see cref="SocketRequests"/>, each following its stream exactly as an SSE response does, and one
/// <see cref="SocketSender"/> that writes every message.
/// </summary>
internal static class InferenceSocket
{
    /// <summary>Serves <paramref name="socket"/> until it closes or <paramref name="connectionAborted"/> fires.</summary>
    public static async Task RunAsync(IServiceProvider services, WebSocket socket, string client, CancellationToken connectionAborted)
    {
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
        var sender = new SocketSender(socket);
        var requests = new SocketRequests(ActivatorUtilities.CreateInstance<SocketRequestRunner>(services, sender, client));
        var receiver = ActivatorUtilities.CreateInstance<SocketReceiver>(services, socket, sender, requests);
        var logger = services.GetRequiredService<ILogger<SocketReceiver>>();

        var sending = sender.RunAsync(lifetime.Token);
        try
        {
            await receiver.RunAsync(lifetime.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            Log.WebSocketLost(logger, ex);
        }
        finally
        {
            // Ends every request's follower, which detaches it and so starts the disconnect grace.
            await lifetime.CancelAsync();
            await requests.WhenAllAsync();
            sender.Complete();
            await sending;
        }
    }
}
