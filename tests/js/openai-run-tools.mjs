// The npm `openai` client's runTools helper, looping on its own until the model answers without calling a tool.
// VIX_ARGS: { model?, prompt, tool: { name, description, parameters }, result, stream? }
//   The tool's function records the arguments it was handed (parsed by JSON.parse) and returns `result`.
// Prints { content, invocations, calls, roles, completions, finishReasons }: the final content, what the function
// was called with, the tool calls in the runner's conversation, its messages' roles, and each completion's finish.
import OpenAI from 'openai';
import { apiKey, args, baseURL, report } from './vix.mjs';

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const invocations = [];
const runner = client.chat.completions.runTools({
  model: args.model ?? 'synthetic',
  messages: [{ role: 'user', content: args.prompt }],
  stream: args.stream ?? false,
  tools: [{
    type: 'function',
    function: {
      name: args.tool.name,
      description: args.tool.description,
      parameters: args.tool.parameters,
      parse: JSON.parse,
      function: async parsed => {
        invocations.push(parsed);
        return args.result;
      },
    },
  }],
}, { maxChatCompletions: 5 });

const content = await runner.finalContent();
report({
  content,
  invocations,
  calls: runner.messages.flatMap(m => m.tool_calls ?? []).map(c => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
  roles: runner.messages.map(m => m.role),
  completions: runner.allChatCompletions().length,
  finishReasons: runner.allChatCompletions().map(c => c.choices[0]?.finish_reason ?? null),
});
