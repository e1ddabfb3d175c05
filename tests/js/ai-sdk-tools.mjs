// The Vercel AI SDK's streamText with a tool (a zod inputSchema and execute) and a multi-step stop condition, over
// @ai-sdk/openai-compatible: the SDK runs the tool and sends its result back until the model answers in text.
// VIX_ARGS: { model?, prompt, toolName, result, maxSteps? }
//   The tool takes { city: string, unit: "celsius" | "fahrenheit", days: integer 1..7 }; execute records its input
//   and returns `result`.
// Prints { text, steps, stepFinishReasons, toolCalls, toolResults, toolErrors, executed, finishReason, errors }.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { apiKey, args, baseURL, describeError, report } from './vix.mjs';

const model = createOpenAICompatible({ name: 'vix', baseURL, apiKey, includeUsage: true })(args.model ?? 'synthetic');
const executed = [];
const errors = [];
const result = streamText({
  model,
  prompt: args.prompt,
  maxRetries: 0,
  stopWhen: stepCountIs(args.maxSteps ?? 3),
  tools: {
    [args.toolName]: tool({
      description: 'Looks up the weather forecast for a city.',
      inputSchema: z.object({
        city: z.string().min(1),
        unit: z.enum(['celsius', 'fahrenheit']),
        days: z.number().int().min(1).max(7),
      }),
      execute: async input => {
        executed.push(input);
        return args.result;
      },
    }),
  },
  onError: ({ error }) => errors.push(describeError(error)),
});

let text = '';
for await (const delta of result.textStream) {
  text += delta;
}

const steps = await result.steps;
report({
  text,
  steps: steps.length,
  stepFinishReasons: steps.map(s => s.finishReason),
  toolCalls: steps.flatMap(s => s.toolCalls).map(c => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
  toolResults: steps.flatMap(s => s.toolResults).map(r => ({ toolCallId: r.toolCallId, toolName: r.toolName, output: r.output })),
  // A tool input the schema refused, or a failed execute, shows up as a tool-error part.
  toolErrors: steps.flatMap(s => s.content).filter(p => p.type === 'tool-error').map(p => describeError(p.error)),
  executed,
  finishReason: await result.finishReason,
  errors,
});
