// The npm `openai` client's chat completions, as an application calls them.
// VIX_ARGS: { mode: "stream" | "whole", model?, messages, maxTokens? }
// Prints { text, finishReason, usage, chunks, ids, objects, models, roles, error }: what arrived, and error when
// the client threw an APIError for the server's answer ({ name, message, status, code, type, param, body }), else null.
import OpenAI from 'openai';
import { apiKey, args, baseURL, describeError, report } from './vix.mjs';

// No retries: a retried request would hide a failed first attempt from the test.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const request = {
  model: args.model ?? 'synthetic',
  messages: args.messages,
  ...(args.maxTokens === undefined ? {} : { max_tokens: args.maxTokens }),
};
const seen = { text: '', finishReason: null, usage: null, chunks: 0, ids: [], objects: [], models: [], roles: [], error: null };

try {
  await (args.mode === 'whole' ? whole() : stream());
} catch (error) {
  // An answer the server gave is observed; no answer at all (a connection error) fails the script.
  if (!(error instanceof OpenAI.APIError) || error instanceof OpenAI.APIConnectionError) {
    throw error;
  }
  seen.error = describeError(error);
}
report(seen);

async function stream() {
  const chunks = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of chunks) {
    seen.chunks++;
    add(seen.ids, chunk.id);
    add(seen.objects, chunk.object);
    add(seen.models, chunk.model);
    for (const choice of chunk.choices) {
      seen.text += choice.delta?.content ?? '';
      add(seen.roles, choice.delta?.role);
      seen.finishReason ??= choice.finish_reason ?? null;
    }
    seen.usage ??= chunk.usage ?? null;
  }
}

async function whole() {
  const completion = await client.chat.completions.create(request);
  add(seen.ids, completion.id);
  add(seen.objects, completion.object);
  add(seen.models, completion.model);
  seen.usage = completion.usage ?? null;
  seen.choices = completion.choices.length;
  const choice = completion.choices[0];
  seen.text = choice.message.content;
  add(seen.roles, choice.message.role);
  seen.finishReason = choice.finish_reason;
}

function add(list, value) {
  if (value !== undefined && value !== null && !list.includes(value)) {
    list.push(value);
  }
}
