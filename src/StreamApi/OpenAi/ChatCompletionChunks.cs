using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using VixAspire.StreamApi.Streaming;

namespace VixAspire.StreamApi.OpenAi;

/// <summary>
/// OpenAI's streamed chat completion: a role chunk, a <c>chat.completion.chunk</c> per token, reasoning fragment
/// (<c>delta.reasoning_content</c>) and tool-call fragment (<c>delta.tool_calls</c>), then the finish chunk
/// (or, when the generation failed, a data line holding an error object), a usage chunk when asked, and
/// <c>data: [DONE]</c>. Written straight into the response pipe with one reused <see cref="Utf8JsonWriter"/>.
/// </summary>
internal sealed class ChatCompletionChunks(ChatCompletionResult completion, Utf8JsonWriter json)
{
    private bool _begun;
    private GenerationError? _error;

    public void Write(PipeWriter pipe, in StreamItem item)
    {
        if (!_begun)
        {
            _begun = true;
            WriteChunk(pipe, role: true, content: "", finishReason: null);
        }

        var envelope = item.Envelope.Span;
        switch (item.Kind)
        {
            case StreamItemKind.Heartbeat:
                SseWriter.Write(pipe, item);
                break;
            case StreamItemKind.Token:
                // Decoded from an envelope the worker already sanitised: valid UTF-16, nothing to repair per token.
                WriteChunk(pipe, role: false, EnvelopeFields.String(envelope, "text"u8) ?? "", finishReason: null);
                break;
            case StreamItemKind.Reasoning:
                // The field vLLM, DeepSeek, llama.cpp and Ollama stream reasoning in.
                BeginDelta(pipe);
                json.WriteString("reasoning_content"u8, EnvelopeFields.String(envelope, "text"u8) ?? "");
                EndDelta(pipe, finishReason: null);
                break;
            case StreamItemKind.ToolCall:
                BeginDelta(pipe);
                json.WriteStartArray("tool_calls"u8);
                ToolCallFragment.Read(envelope).WriteDelta(json);
                json.WriteEndArray();
                EndDelta(pipe, finishReason: null);
                break;
            case StreamItemKind.Error:
                _error = GenerationError.Read(envelope);
                break;
            case StreamItemKind.End:
                if (_error is { } failed)
                {
                    WriteError(pipe, failed);
                }
                else
                {
                    WriteChunk(pipe, role: false, content: null, ChatCompletionResult.FinishReason(envelope));
                }

                if (completion.IncludeUsage)
                {
                    Begin(pipe);
                    json.WriteStartArray("choices"u8);
                    json.WriteEndArray();
                    ChatCompletionResult.WriteUsage(json, envelope);
                    End(pipe);
                }

                pipe.Write("data: [DONE]\n\n"u8);
                break;
        }
    }

    private void WriteChunk(PipeWriter pipe, bool role, string? content, string? finishReason)
    {
        BeginDelta(pipe);
        if (role)
        {
            json.WriteString("role"u8, "assistant"u8);
        }

        if (content is not null)
        {
            json.WriteString("content"u8, content);
        }

        EndDelta(pipe, finishReason);
    }

    private void BeginDelta(PipeWriter pipe)
    {
        Begin(pipe);
        json.WriteStartArray("choices"u8);
        json.WriteStartObject();
        json.WriteNumber("index"u8, 0);
        json.WriteStartObject("delta"u8);
    }

    private void EndDelta(PipeWriter pipe, string? finishReason)
    {
        json.WriteEndObject();
        json.WriteNull("logprobs"u8);
        if (finishReason is null)
        {
            json.WriteNull("finish_reason"u8);
        }
        else
        {
            json.WriteString("finish_reason"u8, finishReason);
        }

        json.WriteEndObject();
        json.WriteEndArray();
        End(pipe);
    }

    /// <summary>Mid-stream failures, as OpenAI-compatible servers send them: a data line holding an error object.</summary>
    private void WriteError(PipeWriter pipe, GenerationError error)
    {
        pipe.Write("data: "u8);
        json.Reset(pipe);
        json.WriteStartObject();
        json.WriteStartObject("error"u8);
        json.WriteString("message"u8, error.Message);
        json.WriteString("type"u8, "server_error"u8);
        json.WriteNull("param"u8);
        json.WriteString("code"u8, error.Code);
        json.WriteEndObject();
        End(pipe);
    }

    private void Begin(PipeWriter pipe)
    {
        pipe.Write("data: "u8);
        json.Reset(pipe);
        json.WriteStartObject();
        json.WriteString("id"u8, completion.CompletionId);
        json.WriteString("object"u8, "chat.completion.chunk"u8);
        json.WriteNumber("created"u8, completion.Created);
        json.WriteString("model"u8, completion.Model);
    }

    private void End(PipeWriter pipe)
    {
        json.WriteEndObject();
        json.Flush();
        pipe.Write("\n\n"u8);
    }
}
