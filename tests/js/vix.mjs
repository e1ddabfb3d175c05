// What every client script shares: its inputs from the environment, and the one JSON line it prints last.
//   VIX_BASE_URL  the OpenAI-style base URL, e.g. http://127.0.0.1:8080/v1
//   VIX_API_KEY   the API key the client sends (default: "not-needed")
//   VIX_ARGS      a JSON object of the script's own arguments (default: {})
// Anything unexpected is thrown: the script exits non-zero with the stack on stderr.

export const baseURL = required('VIX_BASE_URL');
export const apiKey = process.env.VIX_API_KEY || 'not-needed';
export const args = JSON.parse(process.env.VIX_ARGS || '{}');

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

/** Prints what the script observed as its last stdout line. */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** An error as the client surfaced it: its class, and the fields an application would read. */
export function describeError(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    message: error?.message ?? String(error),
    status: error?.status ?? error?.statusCode ?? null,
    code: error?.code ?? null,
    type: error?.type ?? null,
    param: error?.param ?? null,
    body: error?.error ?? error?.data ?? null,
  };
}
