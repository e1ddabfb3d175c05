// The npm `openai` client streaming chat completions with tools, as an agent's own loop does it: collect the
// streamed calls by index, run them (here: answer each with the result the test chose), send the results back.
// VIX_ARGS: { model?, messages, request?, results? }
//   request  fields sent as they are with every turn (tools, tool_choice, response_format, parallel_tool_calls, ...)
//   results  { [toolName]: string }: when given and the first turn ends with tool calls, a second turn sends the
//            assistant message with those calls and one `tool` message per call with the named tool's result.
// Prints { turns: [{ calls, fragments, text, finishReason, usage, chunks }], sent, error }: sent is the messages of
// each turn as the client sent them; error is an APIError the client threw for the server's answer, else null.
import OpenAI from 'openai';
import { apiKey, args, baseURL, describeError, report } from './vix.mjs';

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const seen = { turns: [], sent: [], error: null };

try {
  const messages = [...args.messages];
  const first = await turn(messages);
  if (args.results && first.finishReason === 'tool_calls' && first.calls.length > 0) {
    messages.push({
      role: 'assistant',
      ...(first.text === '' ? {} : { content: first.text }),
      tool_calls: first.calls.map(call => ({ id: call.id, type: call.type, function: { name: call.name, arguments: call.arguments } })),
    });
    for (const call of first.calls) {
      messages.push({ role: 'tool', tool_call_id: call.id, content: args.results[call.name] ?? '' });
    }
    await turn(messages);
  }
} catch (error) {
  if (!(error instanceof OpenAI.APIError) || error instanceof OpenAI.APIConnectionError) {
    throw error;
  }
  seen.error = describeError(error);
}
report(seen);

async function turn(messages) {
  seen.sent.push(structuredClone(messages));
  const result = { calls: [], fragments: [], text: '', finishReason: null, usage: null, chunks: 0 };
  seen.turns.push(result);
  const stream = await client.chat.completions.create({
    model: args.model ?? 'synthetic',
    messages,
    ...args.request,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    result.chunks++;
    result.usage ??= chunk.usage ?? null;
    for (const choice of chunk.choices) {
      result.text += choice.delta?.content ?? '';
      result.finishReason ??= choice.finish_reason ?? null;
      for (const fragment of choice.delta?.tool_calls ?? []) {
        result.fragments.push(fragment);
        // The first fragment of a call brings its id, type and name; later ones add to its arguments.
        const call = result.calls[fragment.index] ??= { index: fragment.index, id: null, type: null, name: null, arguments: '' };
        call.id ??= fragment.id ?? null;
        call.type ??= fragment.type ?? null;
        call.name ??= fragment.function?.name ?? null;
        call.arguments += fragment.function?.arguments ?? '';
      }
    }
  }
  return result;
}
