// The Vercel AI SDK's structured output: streamText with `output: Output.object({ schema })` and a zod schema, over
// @ai-sdk/openai-compatible told the server supports json_schema response formats.
// VIX_ARGS: { model?, prompt }
// Prints { object, parsed, issues, partials, jsonSchema, text, finishReason, errors }: the SDK's object, whether the zod
// schema parses it (and its issues when not), how many partial objects streamed, and the JSON schema zod sent.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Output, streamText } from 'ai';
import { z } from 'zod';
import { apiKey, args, baseURL, describeError, report } from './vix.mjs';

const schema = z.object({
  city: z.string(),
  temperature: z.number(),
  conditions: z.enum(['sunny', 'cloudy', 'rainy']),
  hourly: z.array(z.object({ hour: z.number().int(), temp: z.number() })),
  alert: z.boolean(),
});

const model = createOpenAICompatible({ name: 'vix', baseURL, apiKey, supportsStructuredOutputs: true })(args.model ?? 'synthetic');
const errors = [];
const result = streamText({
  model,
  prompt: args.prompt,
  maxRetries: 0,
  output: Output.object({ schema, name: 'forecast' }),
  onError: ({ error }) => errors.push(describeError(error)),
});

let partials = 0;
for await (const _ of result.partialOutputStream) {
  partials++;
}

const object = await result.output.catch(error => {
  errors.push(describeError(error));
  return null;
});
const check = schema.safeParse(object);
report({
  object,
  parsed: check.success,
  issues: check.success ? [] : check.error.issues,
  partials,
  jsonSchema: z.toJSONSchema(schema),
  text: await result.text,
  finishReason: await result.finishReason,
  errors,
});
