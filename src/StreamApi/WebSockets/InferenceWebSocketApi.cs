using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// Maps <c>GET /infer/ws</c>: the typed envelopes of the SSE endpoints as WebSocket text messages, several requests on
/// one socket.
/// </summary>
/// <remarks>
/// <para>Client to server, one JSON object per text message:</para>
/// <list type="bullet">
/// <item><c>{"type":"inference.request","request_id":"tag","payload":{...}}</c>: the payload is the body of
/// <c>POST /infer/stream</c>; <c>request_id</c> is an optional string the server echoes on every message of
/// that request.</item>
/// <item><c>{"type":"inference.cancel","request_id":"tag"}</c> or <c>{"type":"inference.cancel","stream_id":"id"}</c>
/// cancels the matching requests of this socket (with neither id, all of them); the stream then ends with
/// reason <c>cancelled</c>. Ids of requests no longer running are ignored, since a cancel may cross the end.</item>
/// </list>
/// <para>Server to client: each stored envelope with <c>stream_id</c> and <c>request_id</c> spliced in front,
/// <c>{"stream_id":"...","request_id":"tag","type":"inference.token","payload":{"text":"hi","index":0}}</c>.
/// A request that runs gets one <c>inference.start</c> first and one <c>inference.end</c> last, and its
/// <c>stream_id</c> works with <c>GET</c> and <c>DELETE /infer/stream/{id}</c>. A request refused before it
/// runs (<c>invalid_request</c>, <c>model_not_found</c>, <c>too_many_streams</c>, <c>queue_full</c>) gets
/// <c>inference.error</c> then <c>inference.end</c> (reason <c>error</c>) with a null <c>stream_id</c>. A
/// message that is not a JSON object of a known type gets <c>inference.error</c> <c>invalid_message</c>
/// (no end: it started nothing). The socket stays open in every one of these cases.</para>
/// <para>Limits: a message over <see cref="StreamingOptions.MaxRequestBodyBytes"/> closes the socket with 1009, as soon as
/// its frame headers declare it (<see cref="FrameLimit"/>).
/// The server pings every <see cref="StreamingOptions.HeartbeatInterval"/> and drops a client that has not
/// answered within another interval. A closed or dropped socket detaches from its streams, so each generation is
/// cancelled after the disconnect grace unless a client resumes it with <c>GET /infer/stream/{id}</c>.</para>
/// </remarks>
public static class InferenceWebSocketApi
{
    /// <summary>Maps <c>/ws</c> on the <c>/infer</c> group.</summary>
    public static RouteGroupBuilder MapInferenceWebSocket(this RouteGroupBuilder infer)
    {
        // GET is the HTTP/1.1 upgrade; CONNECT is a WebSocket over HTTP/2 (RFC 8441), as the gateway opens them.
        infer.MapMethods("/ws", [HttpMethods.Get, HttpMethods.Connect], ConnectAsync);
        return infer;
    }

    internal static async Task<Results<EmptyHttpResult, ProblemHttpResult>> ConnectAsync(
        HttpContext context,
        IOptionsMonitor<StreamingOptions> options,
        CancellationToken cancellationToken)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "WebSocket upgrade required",
                detail: "GET /infer/ws takes a WebSocket handshake ('Connection: Upgrade', 'Upgrade: websocket'); for Server-Sent Events use POST /infer/stream.");
        }

        var heartbeat = options.CurrentValue.HeartbeatInterval;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            KeepAliveInterval = heartbeat,
            KeepAliveTimeout = heartbeat,
        });
        await InferenceSocket.RunAsync(context.RequestServices, socket, context.Features.GetRequiredFeature<FrameLimit>(), ClientIdentity.Of(context), cancellationToken);
        return TypedResults.Empty;
    }
}
