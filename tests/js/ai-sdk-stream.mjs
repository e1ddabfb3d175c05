// The Vercel AI SDK's streamText over an OpenAI-compatible provider, as an application writes it.
// VIX_ARGS: { provider?: "openai-compatible" | "openai", model?, prompt, maxTokens?, includeUsage? }
//   "openai-compatible" is @ai-sdk/openai-compatible's createOpenAICompatible; "openai" is @ai-sdk/openai's
//   createOpenAI with its chat-completions model (.chat).
// Prints { text, parts, finishReason, usage, errors }: errors are what onError was handed.
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { streamText } from 'ai';
import { apiKey, args, baseURL, describeError, report } from './vix.mjs';

const modelId = args.model ?? 'synthetic';
const model = args.provider === 'openai'
  ? createOpenAI({ baseURL, apiKey }).chat(modelId)
  : createOpenAICompatible({ name: 'vix', baseURL, apiKey, includeUsage: args.includeUsage })(modelId);

const errors = [];
const result = streamText({
  model,
  prompt: args.prompt,
  maxOutputTokens: args.maxTokens,
  // No retries: a retried request would hide a failed first attempt from the test.
  maxRetries: 0,
  onError: ({ error }) => errors.push(describeError(error)),
});

let text = '';
let parts = 0;
for await (const delta of result.textStream) {
  text += delta;
  parts++;
}

report({
  text,
  parts,
  finishReason: await result.finishReason.catch(() => null),
  usage: await result.usage.catch(() => null),
  errors,
});
