using System.Net.WebSockets;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// One client's socket: a <see cref="SocketReceiver"/> that starts and cancels requests, the running
/// <see cref="SocketRequests"/>, each following its stream exactly as an SSE response does, and one
/// <see cref="SocketSender"/> that writes every message.
/// </summary>
internal static class InferenceSocket
{
    /// <summary>1012 Service Restart: connect again, to another replica, and resume.</summary>
    private const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    /// <summary>How long a client may take to answer the close of a stopping host before the socket is dropped.</summary>
    private static readonly TimeSpan RestartCloseTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Serves <paramref name="socket"/> until it closes, <paramref name="connectionAborted"/> fires or the host stops.</summary>
    public static async Task RunAsync(IServiceProvider services, WebSocket socket, FrameLimit frames, ClientIdentity client, CancellationToken connectionAborted)
    {
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
        var sender = new SocketSender(socket);
        var requests = new SocketRequests(ActivatorUtilities.CreateInstance<SocketRequestRunner>(services, sender, client));
        var receiver = ActivatorUtilities.CreateInstance<SocketReceiver>(services, socket, sender, requests, frames);
        var logger = services.GetRequiredService<ILogger<SocketReceiver>>();
        var restart = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stopping = services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping
            .Register(static s => ((TaskCompletionSource)s!).TrySetResult(), restart);

        var sending = sender.RunAsync(lifetime.Token);
        try
        {
            var receiving = receiver.RunAsync(lifetime.Token);
            if (await Task.WhenAny(receiving, restart.Task) != receiving)
            {
                // The requests' followers stop by themselves, without an end; the close tells the client to go elsewhere.
                // The receive loop ends with the client's answer (cancelling a receive would abort the socket first).
                lifetime.CancelAfter(RestartCloseTimeout);
                await sender.CloseAsync(ServiceRestart, "The server is restarting: connect again and resume with GET /infer/stream/{id}.",
                    awaitReply: false, lifetime.Token);
            }

            await receiving;
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
