// The demo page: POST /infer/stream read as a fetch stream (so it can carry an Authorization header, which
// EventSource cannot), SSE parsed here, and GET /infer/stream/{id} with Last-Event-ID after a dropped
// connection until the end event arrives.
"use strict";

const KEY_STORAGE = "vixaspire.apiKey";
const MAX_RECONNECTS = 20;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("prompt-form"),
  prompt: $("prompt"),
  model: $("model"),
  maxTokens: $("max-tokens"),
  apiKey: $("api-key"),
  forgetKey: $("forget-key"),
  send: $("send"),
  stop: $("stop"),
  status: $("status"),
  error: $("error"),
  output: $("output"),
  ttft: $("ttft"),
  tps: $("tps"),
  count: $("count"),
  reconnects: $("reconnects"),
  streamId: $("stream-id"),
  endReason: $("end-reason"),
};

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

// ---- API key: local storage only, sent only as a bearer token to this origin ----

function apiKey() {
  return ui.apiKey.value.trim();
}

function headers(extra) {
  const h = new Headers(extra);
  const key = apiKey();
  if (key) {
    h.set("Authorization", `Bearer ${key}`);
  }
  return h;
}

function loadKey() {
  try {
    ui.apiKey.value = localStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    // Storage can be disabled; the key then lasts as long as the page.
  }
  if (ui.apiKey.value) {
    $("key-panel").open = true;
  }
}

function saveKey() {
  try {
    if (apiKey()) {
      localStorage.setItem(KEY_STORAGE, apiKey());
    } else {
      localStorage.removeItem(KEY_STORAGE);
    }
  } catch {
    // See loadKey.
  }
}

// ---- Status, errors, stats ----

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

/** An RFC 7807 problem (or any non-2xx answer) as "status title: detail" plus its field errors. */
async function describeFailure(response) {
  let text = `${response.status} ${response.statusText}`.trim();
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) {
    try {
      const problem = await response.json();
      if (problem.title) {
        text = `${response.status} ${problem.title}`;
      }
      if (problem.detail) {
        text += `: ${problem.detail}`;
      }
      if (problem.errors && typeof problem.errors === "object") {
        for (const [field, messages] of Object.entries(problem.errors)) {
          const said = [].concat(messages).join(" ");
          if (!text.includes(said)) {
            text += `\n• ${field}: ${said}`;
          }
        }
      }
      if (problem.error?.message) {
        text += `: ${problem.error.message}`;
      }
    } catch {
      // Not JSON after all: the status line says enough.
    }
  }
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter) {
    text += `\nRetry after ${retryAfter} s.`;
  }
  return text;
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// ---- Typing effect: tokens go to a queue of characters drawn a few per frame ----

const typing = { queue: [], node: null, frame: 0 };

function resetOutput() {
  typing.queue = [];
  cancelAnimationFrame(typing.frame);
  typing.frame = 0;
  ui.output.textContent = "";
  typing.node = document.createTextNode("");
  ui.output.append(typing.node);
}

function type(text) {
  if (reducedMotion.matches) {
    typing.node.appendData(text);
    return;
  }
  // Code points, so an emoji is never split between frames.
  typing.queue.push(...text);
  if (!typing.frame) {
    typing.frame = requestAnimationFrame(drawFrame);
  }
}

function drawFrame() {
  // Catch up faster the further behind the text is, so a burst never lags for long.
  const n = Math.max(1, Math.ceil(typing.queue.length / 8));
  typing.node.appendData(typing.queue.splice(0, n).join(""));
  typing.frame = typing.queue.length ? requestAnimationFrame(drawFrame) : 0;
}

// ---- SSE over a fetch body ----

/** Yields {id, event, data} for each complete event; comments (": ping") are skipped. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { id: null, event: "message", data: [] };
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (event.data.length) {
            yield { id: event.id, event: event.event, data: event.data.join("\n") };
          }
          event = { id: null, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) {
          continue;
        }
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) {
          value = value.slice(1);
        }
        if (field === "id") {
          event.id = value;
        } else if (field === "event") {
          event.event = value;
        } else if (field === "data") {
          event.data.push(value);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// ---- One run: POST, then GET with Last-Event-ID after each drop, until the end event ----

let run = null;

class Run {
  constructor() {
    this.id = null;
    this.lastEventId = null;
    this.nextIndex = 0;
    this.tokens = 0;
    this.reconnects = 0;
    this.drops = 0;
    this.startedAt = performance.now();
    this.firstTokenAt = null;
    this.ended = false;
    this.stopRequested = false;
    this.progressed = false;
  }

  async start(body) {
    let response;
    try {
      response = await fetch("infer/stream", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify(body),
      });
    } catch (error) {
      // Not retried: the request may have reached the API, and a second POST would start a second generation.
      this.fail(`Could not reach the gateway (${error.message}).`);
      return;
    }
    if (!response.ok) {
      this.fail(await describeFailure(response));
      return;
    }
    this.setId(response.headers.get("Location")?.split("/").pop() ?? null);
    let attached = await this.consume(response);
    let attempt = 0;
    while (!attached && !this.ended) {
      if (!this.id) {
        this.fail("The connection dropped before the stream started.");
        return;
      }
      attempt = this.progressed ? 1 : attempt + 1;
      this.progressed = false;
      if (attempt === 1) {
        this.drops++;
      }
      if (attempt > MAX_RECONNECTS) {
        this.fail(`The connection dropped and ${MAX_RECONNECTS} attempts to resume failed.`);
        return;
      }
      setStatus("reconnecting", `Connection lost; resuming (attempt ${attempt})…`);
      await this.backoff(attempt);
      ui.reconnects.textContent = String(++this.reconnects);
      attached = await this.resume();
    }
  }

  /** Re-attaches after the last event seen; false when it has to be tried again. */
  async resume() {
    const extra = { Accept: "text/event-stream" };
    if (this.lastEventId) {
      extra["Last-Event-ID"] = this.lastEventId;
    }
    let response;
    try {
      response = await fetch(`infer/stream/${encodeURIComponent(this.id)}`, { headers: headers(extra) });
    } catch {
      return false;
    }
    if (!response.ok) {
      // The gateway or an API replica may be restarting: those answers are worth another try; a 4xx is not.
      if (response.status >= 500 || response.status === 429) {
        return false;
      }
      this.fail(await describeFailure(response));
      return true;
    }
    return this.consume(response);
  }

  /** Reads events until the end (true) or until the connection drops (false). */
  async consume(response) {
    try {
      for await (const e of readEvents(response.body)) {
        this.handle(e);
        if (this.ended) {
          return true;
        }
      }
    } catch {
      // A network error mid-stream: resumed by the caller.
    }
    return this.ended;
  }

  handle(e) {
    let envelope;
    try {
      envelope = JSON.parse(e.data);
    } catch {
      return;
    }
    const payload = envelope.payload ?? {};
    switch (envelope.type) {
      case "inference.start":
        this.setId(payload.id);
        if (!this.stopRequested) {
          setStatus("streaming", `Streaming from ${payload.model}…`);
        }
        break;
      case "inference.token":
        // A resumed stream starts after Last-Event-ID, so repeats should not happen; the index makes sure.
        if (payload.index < this.nextIndex) {
          break;
        }
        this.nextIndex = payload.index + 1;
        this.tokens++;
        this.firstTokenAt ??= performance.now();
        type(payload.text);
        this.updateStats();
        break;
      case "inference.error":
        showError(`${payload.code}: ${payload.message}${payload.retryable ? " (retryable)" : ""}`);
        break;
      case "inference.end":
        this.finish(payload.reason, payload.usage);
        break;
    }
    if (e.id) {
      // Only after the event is handled: a drop mid-event resumes from the one before.
      this.lastEventId = e.id;
      this.progressed = true;
    }
  }

  setId(id) {
    if (id && !this.id) {
      this.id = id;
      ui.streamId.textContent = id;
      ui.stop.disabled = false;
      if (this.stopRequested) {
        this.sendStop();
      }
    }
  }

  updateStats() {
    const now = performance.now();
    ui.ttft.textContent = formatMs(this.firstTokenAt - this.startedAt);
    ui.count.textContent = String(this.tokens);
    const seconds = (now - this.firstTokenAt) / 1000;
    ui.tps.textContent = this.tokens > 1 && seconds > 0 ? ((this.tokens - 1) / seconds).toFixed(1) : "–";
  }

  finish(reason, usage) {
    this.ended = true;
    ui.endReason.textContent = reason;
    const count = usage?.output_tokens ?? this.tokens;
    if (reason === "cancelled") {
      setStatus("stopped", `Stopped after ${count} tokens (cancelled).`);
    } else if (reason === "error") {
      setStatus("error", `Ended with an error after ${count} tokens.`);
    } else {
      setStatus("done", `Done: ${reason}, ${count} tokens${this.drops ? `, resumed after ${this.drops === 1 ? "a dropped connection" : `${this.drops} dropped connections`}` : ""}.`);
    }
    this.close();
  }

  fail(text) {
    this.ended = true;
    showError(text);
    setStatus("error", "Request failed.");
    this.close();
  }

  close() {
    ui.output.setAttribute("aria-busy", "false");
    ui.send.disabled = false;
    ui.stop.disabled = true;
    if (run === this) {
      run = null;
    }
  }

  async backoff(attempt) {
    const base = Math.min(250 * 2 ** (attempt - 1), 4000);
    const delay = base * (0.8 + Math.random() * 0.4);
    await new Promise((resolve) => {
      const timer = setTimeout(done, delay);
      // Offline: wait for the network to come back rather than burn attempts.
      if (!navigator.onLine) {
        clearTimeout(timer);
        window.addEventListener("online", done, { once: true });
      }
      function done() {
        window.removeEventListener("online", done);
        resolve();
      }
    });
  }

  async stop() {
    this.stopRequested = true;
    setStatus("stopping", "Stopping…");
    ui.stop.disabled = true;
    if (this.id) {
      await this.sendStop();
    }
  }

  async sendStop() {
    try {
      const response = await fetch(`infer/stream/${encodeURIComponent(this.id)}`, { method: "DELETE", headers: headers() });
      if (!response.ok) {
        showError(`Stop failed: ${await describeFailure(response)}`);
      }
      // Accepted: the stream itself reports the stop with its end event (reason "cancelled").
    } catch (error) {
      showError(`Stop failed: ${error.message}`);
    }
  }
}

// ---- Wiring ----

async function loadModels() {
  const previous = ui.model.value;
  try {
    const response = await fetch("v1/models", { headers: headers({ Accept: "application/json" }) });
    if (!response.ok) {
      throw new Error(await describeFailure(response));
    }
    const { data } = await response.json();
    const ids = data.map((m) => m.id);
    ui.model.replaceChildren(...ids.map((id) => new Option(id, id)));
    ui.model.value = ids.includes(previous) ? previous : ids.includes("synthetic") ? "synthetic" : ids[0] ?? "";
  } catch (error) {
    ui.model.replaceChildren(new Option("server default", ""));
    showError(`Could not load models: ${error.message}`);
  }
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (run) {
    return;
  }
  const prompt = ui.prompt.value.trim();
  if (!prompt) {
    ui.prompt.focus();
    showError("Type a prompt first.");
    return;
  }
  const body = { prompt };
  if (ui.model.value) {
    body.model = ui.model.value;
  }
  const maxTokens = Number.parseInt(ui.maxTokens.value, 10);
  if (Number.isFinite(maxTokens)) {
    body.max_tokens = maxTokens;
  }

  clearError();
  resetOutput();
  for (const el of [ui.ttft, ui.tps, ui.streamId, ui.endReason]) {
    el.textContent = "–";
  }
  ui.count.textContent = "0";
  ui.reconnects.textContent = "0";
  ui.output.setAttribute("aria-busy", "true");
  ui.send.disabled = true;
  setStatus("connecting", "Connecting…");
  run = new Run();
  run.start(body);
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    ui.form.requestSubmit();
  }
});

ui.stop.addEventListener("click", () => run?.stop());

ui.apiKey.addEventListener("change", () => {
  saveKey();
  loadModels();
});

ui.forgetKey.addEventListener("click", () => {
  ui.apiKey.value = "";
  saveKey();
  loadModels();
});

loadKey();
resetOutput();
loadModels();
