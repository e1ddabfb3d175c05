using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;
using VixAspire.Worker.Providers;

namespace VixAspire.Bench.Baseline;

/// <summary>
/// <c>POST /infer/stream</c> answered inside one process: the worker's synthetic model generates, and its tokens are
/// framed as the API frames them (<c>id:</c>, <c>event:</c>, <c>data:</c> with the contract's envelopes, a
/// <c>: ping</c> comment after each idle heartbeat interval), with no gateway, Redis, queue or worker in between.
/// The load client sees the same event sequence at the same pace, so the difference is what the system costs.
/// </summary>
internal static class BaselineStream
{
    public static IServiceCollection AddBaselineStreaming(this IServiceCollection services)
    {
        services.AddOptions<SyntheticProviderOptions>().BindConfiguration(SyntheticProviderOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<StreamingOptions>().BindConfiguration(StreamingOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        return services;
    }

    public static IEndpointRouteBuilder MapBaselineStream(this IEndpointRouteBuilder app)
    {
        app.MapPost("/infer/stream", StreamAsync);
        return app;
    }

    private static async Task StreamAsync(HttpContext context, BaselineRequest body, IOptionsMonitor<SyntheticProviderOptions> synthetic,
        IOptionsMonitor<StreamingOptions> streaming, TimeProvider time)
    {
        var model = body.Model ?? ProviderNames.Synthetic;
        SyntheticBehavior? behavior = model switch
        {
            ProviderNames.Synthetic => SyntheticBehavior.Normal,
            ProviderNames.SyntheticStall => SyntheticBehavior.Stall,
            ProviderNames.SyntheticFail => SyntheticBehavior.Fail,
            _ => null,
        };
        if (behavior is null || string.IsNullOrWhiteSpace(body.Prompt))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        var cancellationToken = context.RequestAborted;
        var maxTokens = body.MaxTokens ?? new ModelCatalogOptions().DefaultMaxTokens;
        var id = Guid.NewGuid().ToString("N");
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.Headers.Location = $"/infer/stream/{id}";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var writer = response.BodyWriter;
        var ids = new EventIds(time);
        using var client = new SyntheticChatClient(behavior.Value, synthetic, time);
        try
        {
            WriteEvent(writer, ref ids, EventNames.Start, Envelopes.Start(id, model));
            await writer.FlushAsync(cancellationToken);

            var options = new ChatOptions { MaxOutputTokens = maxTokens, ModelId = model };
            await using var updates = client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, body.Prompt)], options, cancellationToken)
                .GetAsyncEnumerator(cancellationToken);
            var index = 0;
            ChatFinishReason? finish = null;
            while (index < maxTokens && await NextAsync(updates, writer, streaming.CurrentValue.HeartbeatInterval, cancellationToken))
            {
                finish = updates.Current.FinishReason ?? finish;
                WriteEvent(writer, ref ids, EventNames.Token, Envelopes.Token(updates.Current.Text, index++));
                await writer.FlushAsync(cancellationToken);
            }

            var reason = finish == ChatFinishReason.Length || index >= maxTokens ? EndReasons.Length : EndReasons.Stop;
            WriteEvent(writer, ref ids, EventNames.End, Envelopes.End(reason, index));
            await writer.FlushAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client left.
        }
        catch (InvalidOperationException) when (behavior == SyntheticBehavior.Fail)
        {
            WriteEvent(writer, ref ids, EventNames.Error, Envelopes.Error(ErrorCodes.ProviderError, "The model provider failed while generating.", retryable: false));
            WriteEvent(writer, ref ids, EventNames.End, Envelopes.End(EndReasons.Error, 0));
            await writer.FlushAsync(CancellationToken.None);
        }
    }

    /// <summary>The next token; while none comes for a heartbeat interval, a <c>: ping</c> comment, as the API sends.</summary>
    private static async Task<bool> NextAsync(IAsyncEnumerator<ChatResponseUpdate> updates, PipeWriter writer, TimeSpan heartbeat,
        CancellationToken cancellationToken)
    {
        var next = updates.MoveNextAsync();
        if (next.IsCompleted)
        {
            return next.Result;
        }

        var pending = next.AsTask();
        while (true)
        {
            try
            {
                return await pending.WaitAsync(heartbeat, cancellationToken);
            }
            catch (TimeoutException)
            {
                writer.Write(": ping\n\n"u8);
                await writer.FlushAsync(cancellationToken);
            }
        }
    }

    private static void WriteEvent(PipeWriter writer, ref EventIds ids, string name, byte[] envelope)
    {
        writer.Write("id: "u8);
        ids.WriteNext(writer);
        writer.Write("\nevent: "u8);
        var span = writer.GetSpan(name.Length);
        var written = System.Text.Encoding.ASCII.GetBytes(name, span);
        writer.Advance(written);
        writer.Write("\ndata: "u8);
        writer.Write(envelope);
        writer.Write("\n\n"u8);
    }

    /// <summary>Event ids shaped like the Redis stream ids the API sends: <c>milliseconds-sequence</c>.</summary>
    private struct EventIds(TimeProvider time)
    {
        private long _milliseconds;
        private long _sequence;

        public void WriteNext(PipeWriter writer)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            _sequence = now <= _milliseconds ? _sequence + 1 : 0;
            _milliseconds = Math.Max(now, _milliseconds);
            var span = writer.GetSpan(41);
            Utf8Formatter.TryFormat(_milliseconds, span, out var length);
            span[length++] = (byte)'-';
            Utf8Formatter.TryFormat(_sequence, span[length..], out var more);
            writer.Advance(length + more);
        }
    }
}

/// <summary>The part of the public request body the baseline reads.</summary>
internal sealed record BaselineRequest(
    [property: JsonPropertyName("prompt")] string? Prompt,
    [property: JsonPropertyName("model")] string? Model,
    [property: JsonPropertyName("max_tokens")] int? MaxTokens);
