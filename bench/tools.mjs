#!/usr/bin/env node
// Tool-calling streams against the same streams without tools, in one run: N concurrent "agents", each a loop of
// two-step turns over `POST /v1/chat/completions` (stream: true).
//
//   tools: step 1 offers one function tool with tool_choice "required" and reads the streamed call (id, name,
//          arguments) to [DONE]; step 2 sends the call back (the assistant message with tool_calls, then a
//          role "tool" message) and reads the streamed answer to [DONE].
//   plain: the same two round trips without tools: a plain prompt, then a follow-up with the first answer in the
//          conversation; the same max_tokens.
//
// By default each agent alternates the modes, half the agents starting with each, so both modes share the same
// moments of a noisy machine (--order sequential runs all tools turns, then all plain turns). Per turn it records
// TTFT (request start to the first delta carrying content or tool_calls), step-1 completion and completion (the end
// of step 2), and step 2 on its own; it reports p50/p99 per mode, completed and failed turns, and tools/plain ratios.
// The step-2 answers are the same length in both modes (the tool result is long enough to fill max_tokens); the
// step-1 tool call is one model update where the plain answer is max_tokens of them, which the output-token
// counts in the report show.
//
// Plain fetch and a small SSE reader, not the `openai` package: no dependency to install, and both modes pay
// exactly the same client cost (the package's stream helpers would parse tool-call chunks differently from text).
//
// Usage: node bench/tools.mjs --url http://127.0.0.1:8080 [--concurrency 100] [--seconds 20 | --rounds R]
//          [--max-tokens 32] [--model synthetic] [--order interleaved|sequential] [--warmup-rounds 1]
//          [--timeout 60] [--json FILE] [--api-key KEY]
// Progress goes to stderr; the last stdout line is the report as one JSON object.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const options = parseArgs(process.argv.slice(2));
const base = options.url.replace(/\/+$/, '').replace(/\/v1$/, '');
const endpoint = `${base}/v1/chat/completions`;
const MODES = ['tools', 'plain'];

const TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'The city, e.g. Paris' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const QUESTION = 'What is the weather in Paris right now?';
const FOLLOW_UP = 'And what should I wear for it?';
// The synthetic model answers "The get_weather tool returned: <result>." one word a token, the result cut at 200
// characters: enough short words here that the answer reaches max_tokens, as the plain follow-up does.
const RESULT_WORDS = ['sun', 'dry', 'mild', 'wind', 'low', 'clear', 'warm', 'calm'];

function toolResult(args) {
  const words = [`${args.city ?? '?'}:`, '21', args.unit === 'fahrenheit' ? 'F' : 'C'];
  while (words.join(' ').length < 200) {
    words.push(RESULT_WORDS[words.length % RESULT_WORDS.length]);
  }
  return words.join(' ').slice(0, 200);
}

// ---------------------------------------------------------------------------------------------------------------
// One streamed request

class TurnError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** Posts body and reads the SSE stream to [DONE]: the first delta's time, the text, the tool calls, the finish. */
async function stream(body) {
  const started = performance.now();
  let response;
  const signal = AbortSignal.timeout(options.timeout * 1000);
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${options.apiKey}` },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    throw new TurnError(error.name === 'TimeoutError' ? 'timeout' : 'network', error.cause?.code ?? error.message);
  }
  if (response.status !== 200) {
    const text = await response.text().catch(() => '');
    throw new TurnError(`http_${response.status}`, text.slice(0, 200));
  }
  const seen = { first: null, text: '', calls: [], finish: null, usage: null, chunks: 0, done: false };
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const bytes of response.body) {
      buffer += decoder.decode(bytes, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer[end] === '\r' ? 4 : 2));
        if (onEvent(event, seen)) {
          seen.done = true;
        }
      }
    }
  } catch (error) {
    if (error instanceof TurnError) {
      throw error;
    }
    throw new TurnError(error.name === 'TimeoutError' ? 'timeout' : 'stream_broken', error.message);
  }
  if (!seen.done) {
    throw new TurnError('no_done', `the stream ended without [DONE] (finish ${seen.finish})`);
  }
  return { ...seen, started, ended: performance.now() };
}

/** One SSE event; true at [DONE]. Comments (": ping") and other fields are skipped. */
function onEvent(event, seen) {
  const data = event.split(/\r?\n/).filter(line => line.startsWith('data:')).map(line => line.slice(line[5] === ' ' ? 6 : 5)).join('\n');
  if (data === '') {
    return false;
  }
  if (data === '[DONE]') {
    return true;
  }
  let chunk;
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new TurnError('bad_chunk', data.slice(0, 200));
  }
  if (chunk.error) {
    throw new TurnError(`stream_error_${chunk.error.code ?? 'unknown'}`, chunk.error.message);
  }
  seen.chunks++;
  seen.usage ??= chunk.usage ?? null;
  for (const choice of chunk.choices ?? []) {
    const delta = choice.delta ?? {};
    if ((delta.content || delta.tool_calls?.length) && seen.first === null) {
      seen.first = performance.now();
    }
    seen.text += delta.content ?? '';
    for (const fragment of delta.tool_calls ?? []) {
      const call = (seen.calls[fragment.index ?? 0] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      call.id += fragment.id ?? '';
      call.function.name += fragment.function?.name ?? '';
      call.function.arguments += fragment.function?.arguments ?? '';
    }
    seen.finish = choice.finish_reason ?? seen.finish;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// One turn of an agent: two round trips

function request(messages, extra = {}) {
  return {
    model: options.model,
    messages,
    max_tokens: options.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    ...extra,
  };
}

async function turn(mode) {
  const user = { role: 'user', content: QUESTION };
  const one = mode === 'tools'
    ? await stream(request([user], { tools: [TOOL], tool_choice: 'required' }))
    : await stream(request([{ role: 'user', content: 'Describe the weather in Paris right now.' }]));
  let messages;
  if (mode === 'tools') {
    const call = one.calls[0];
    if (one.finish !== 'tool_calls' || !call?.id || call.function.name !== TOOL.function.name) {
      throw new TurnError('no_tool_call', `finish ${one.finish}, calls ${JSON.stringify(one.calls)}`);
    }
    let args;
    try {
      args = JSON.parse(call.function.arguments);
    } catch {
      throw new TurnError('bad_arguments', call.function.arguments.slice(0, 200));
    }
    messages = [user, { role: 'assistant', content: null, tool_calls: one.calls },
      { role: 'tool', tool_call_id: call.id, content: toolResult(args) }];
  } else {
    if (!one.text) {
      throw new TurnError('no_text', `step 1: finish ${one.finish}`);
    }
    messages = [{ role: 'user', content: 'Describe the weather in Paris right now.' }, { role: 'assistant', content: one.text },
      { role: 'user', content: FOLLOW_UP }];
  }
  const two = await stream(request(messages, mode === 'tools' ? { tools: [TOOL], tool_choice: 'auto' } : {}));
  if (!two.text || two.calls.length) {
    throw new TurnError('no_answer', `step 2: finish ${two.finish}, ${two.calls.length} tool calls`);
  }
  if (mode === 'tools' && !two.text.startsWith(`The ${TOOL.function.name} tool returned:`)) {
    throw new TurnError('wrong_answer', two.text.slice(0, 200));
  }
  return {
    ttft: one.first - one.started,
    step1: one.ended - one.started,
    completion: two.ended - one.started,
    step2_ttft: two.first - two.started,
    step2: two.ended - two.started,
    tokens1: one.usage?.completion_tokens ?? null,
    tokens2: two.usage?.completion_tokens ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The run

const results = { tools: newResults(), plain: newResults() };

function newResults() {
  return { started: 0, completed: 0, failed: 0, errors: {}, samples: [] };
}

async function measuredTurn(mode, record) {
  const into = results[mode];
  if (record) {
    into.started++;
  }
  try {
    const sample = await turn(mode);
    if (record) {
      into.completed++;
      into.samples.push(sample);
    }
  } catch (error) {
    const kind = error instanceof TurnError ? error.kind : 'client_error';
    if (record) {
      into.failed++;
      into.errors[kind] = (into.errors[kind] ?? 0) + 1;
    }
    if (!record || (into.errors[kind] ?? 0) <= 3) {
      process.stderr.write(`tools: ${mode} turn failed (${kind}): ${error.message}\n`);
    }
  }
}

/** Runs `next(agent, n)`'s modes until it returns null, for every agent at once. */
async function agents(next, record) {
  await Promise.all(Array.from({ length: options.concurrency }, async (_, agent) => {
    for (let n = 0; ; n++) {
      const mode = next(agent, n);
      if (mode === null) {
        return;
      }
      await measuredTurn(mode, record);
    }
  }));
}

function alternating(agent, n) {
  return MODES[(agent + n) % 2];
}

async function main() {
  const t0 = performance.now();
  if (options.warmupRounds > 0) {
    process.stderr.write(`tools: warm-up, ${options.warmupRounds} round(s) of each mode per agent\n`);
    await agents((agent, n) => (n < 2 * options.warmupRounds ? alternating(agent, n) : null), false);
  }
  const warm = performance.now();
  process.stderr.write(`tools: ${options.concurrency} agents, ${options.rounds ? `${options.rounds} round(s) of each mode` : `${options.seconds} s`}, ${options.order}\n`);
  const phases = options.order === 'sequential' ? MODES.map(m => [m]) : [MODES];
  const wall = {};
  for (const modes of phases) {
    const started = performance.now();
    const deadline = started + options.seconds * 1000;
    const next = modes.length === 1
      ? (agent, n) => ((options.rounds ? n < options.rounds : performance.now() < deadline) ? modes[0] : null)
      : (agent, n) => ((options.rounds ? n < 2 * options.rounds : performance.now() < deadline) ? alternating(agent, n) : null);
    await agents(next, true);
    wall[modes.join('+')] = (performance.now() - started) / 1000;
  }
  const report = {
    url: base,
    concurrency: options.concurrency,
    seconds: options.rounds ? null : options.seconds,
    rounds: options.rounds || null,
    order: options.order,
    max_tokens: options.maxTokens,
    model: options.model,
    warmup_seconds: round((warm - t0) / 1000),
    wall_seconds: Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, round(v)])),
  };
  for (const mode of MODES) {
    const r = results[mode];
    report[mode] = {
      turns: { started: r.started, completed: r.completed, failed: r.failed },
      errors: r.errors,
      ...Object.fromEntries(['ttft', 'step1', 'completion', 'step2_ttft', 'step2'].map(k => [`${k}_ms`, stats(r.samples.map(s => s[k]))])),
      output_tokens: { step1: mean(r.samples.map(s => s.tokens1)), step2: mean(r.samples.map(s => s.tokens2)) },
    };
  }
  report.ratio = {};
  for (const k of ['ttft', 'step1', 'completion', 'step2_ttft', 'step2']) {
    const t = report.tools[`${k}_ms`], p = report.plain[`${k}_ms`];
    report.ratio[k] = { p50: ratio(t.p50, p.p50), p99: ratio(t.p99, p.p99) };
  }
  for (const mode of MODES) {
    const m = report[mode];
    process.stderr.write(`tools: ${mode}: ${m.turns.completed}/${m.turns.started} turns complete, ${m.turns.failed} failed; ` +
      `TTFT p50 ${m.ttft_ms.p50} p99 ${m.ttft_ms.p99} ms; completion p50 ${m.completion_ms.p50} p99 ${m.completion_ms.p99} ms\n`);
  }
  const line = JSON.stringify(report);
  if (options.json) {
    writeFileSync(options.json, `${line}\n`);
  }
  process.stdout.write(`${line}\n`);
  process.exitCode = MODES.every(m => report[m].turns.completed > 0) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Figures

function stats(values) {
  const sorted = values.filter(v => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) {
    return { count: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  }
  // Nearest rank: the value at or below which the given share of the samples lie.
  const at = q => round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]);
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted.at(-1)), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

function mean(values) {
  const known = values.filter(v => Number.isFinite(v));
  return known.length ? round(known.reduce((a, b) => a + b, 0) / known.length) : null;
}

function ratio(a, b) {
  return a !== null && b ? Math.round((a / b) * 1000) / 1000 : null;
}

function round(v) {
  return Math.round(v * 10) / 10;
}

function parseArgs(argv) {
  const o = { url: null, concurrency: 100, seconds: 20, rounds: 0, maxTokens: 32, model: 'synthetic', order: 'interleaved',
    warmupRounds: 1, timeout: 60, json: null, apiKey: process.env.VIX_API_KEY || 'not-needed' };
  const names = { '--url': 'url', '--concurrency': 'concurrency', '--seconds': 'seconds', '--rounds': 'rounds', '--max-tokens': 'maxTokens',
    '--model': 'model', '--order': 'order', '--warmup-rounds': 'warmupRounds', '--timeout': 'timeout', '--json': 'json', '--api-key': 'apiKey' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write('node bench/tools.mjs --url URL [--concurrency 100] [--seconds 20 | --rounds R] [--max-tokens 32] ' +
        '[--model synthetic] [--order interleaved|sequential] [--warmup-rounds 1] [--timeout 60] [--json FILE] [--api-key KEY]\n');
      process.exit(0);
    }
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      throw new Error(`unknown or incomplete option ${argv[i]} (--help lists them)`);
    }
    const value = argv[++i];
    o[key] = typeof o[key] === 'number' ? Number(value) : value;
    if (typeof o[key] === 'number' && !Number.isFinite(o[key])) {
      throw new Error(`${argv[i - 1]} wants a number, not ${value}`);
    }
  }
  if (!o.url) {
    throw new Error('--url is needed, e.g. --url http://127.0.0.1:8080');
  }
  if (!['interleaved', 'sequential'].includes(o.order)) {
    throw new Error('--order is interleaved or sequential');
  }
  return o;
}

await main();
