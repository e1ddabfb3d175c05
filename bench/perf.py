#!/usr/bin/env python3
"""The performance table: VixAspire through the gateway against a one-process baseline, in the same run.

Run through bench/perf.sh, which builds Release first. Starts redis-server, StreamApi and Worker replicas and the
gateway as plain processes (the configuration the AppHost gives them, without its proxies), plus the baseline
streamer; runs the load tool against both at each concurrency; holds many idle streams open; then the AppHost as
./run.sh starts it. Prints a markdown report (also saved in the output folder). Standard library only.
"""
import argparse
import atexit
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "Release"
TFM = "net10.0"
LISTENING = re.compile(r"Now listening on: (http://\S+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Commands this script sends itself, left out of every count.
OWN_COMMANDS = {"info", "auth", "pubsub", "monitor"}
# One MONITOR line: `+<time> [<db> <client address, or lua>] "<COMMAND>" ...`.
MONITOR_LINE = re.compile(rb'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"', re.M)

STARTED = time.monotonic()
PROCS = []
OUT = None


def log(message):
    print(f"[perf {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Processes


class Proc:
    """One process of ours, in a session of its own, its output in OUT/<name>.log."""

    def __init__(self, name, args, env, cwd=None):
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self.log_file = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.popen.pid
        self.rusage = None
        self.address = None
        PROCS.append(self)
        with open(OUT / "pids", "a") as pids:
            pids.write(f"{self.pid}\n")

    def alive(self):
        if self.popen.returncode is not None:
            return False
        pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.rusage = rusage
        return False

    def wait(self, timeout):
        """True when the process exited within timeout (its resource usage is then in self.rusage)."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def wait_listening(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.address = match.group(1).replace("[::]", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")
                return self.address
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before listening; see {self.log_path}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not listen within {timeout} s; see {self.log_path}")

    def signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=15):
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            self.signal(signal.SIGKILL)
            self.wait(5)

    def rss_kib(self):
        return proc_rss_kib(self.pid)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None


def proc_rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def stop_all():
    for proc in reversed(PROCS):
        if proc.alive():
            proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in reversed(PROCS):
        proc.wait(max(0.0, deadline - time.monotonic()))
        if proc.alive():
            proc.signal(signal.SIGKILL)
            proc.wait(5)
    # perf.sh's fallback ends what is listed here: only what still runs.
    with open(OUT / "pids", "w") as pids:
        pids.writelines(f"{p.pid}\n" for p in PROCS if p.alive())


def descendants(root_pid):
    """Every process under root_pid, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def established(port):
    """Established TCP connections whose local port is port (connections a server accepted)."""
    result = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, timeout=30)
    return sum(1 for line in result.stdout.splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------------------------
# Redis


def resp(*args):
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Redis:
    """A minimal RESP client: AUTH, then one command at a time on one connection."""

    def __init__(self, port, password):
        self.port, self.password = port, password
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = self.sock.makefile("rb")
        self.call("AUTH", password)

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self._read()

    def _read(self):
        line = self.reader.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self.reader.read(length + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            length = int(rest)
            return None if length < 0 else [self._read() for _ in range(length)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def info(self, section):
        values = {}
        for line in self.call("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                values[key] = value
        return values

    def snapshot(self):
        """Calls per command (ours left out) and Redis's CPU seconds, now."""
        calls = {}
        for key, value in self.info("commandstats").items():
            name = key.removeprefix("cmdstat_")
            if name not in OWN_COMMANDS:
                calls[name] = int(re.search(r"calls=(\d+)", value).group(1))
        cpu = self.info("cpu")
        return {"calls": calls, "cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), "at": time.monotonic()}

    # Streams with a live attach lease: an API replica follows each (one script: SCAN over the lease sets).
    FOLLOWED_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cursor, n = '0', 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', 'vix:*:clients', 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if redis.call('ZCOUNT', k, '(' .. now, '+inf') > 0 then n = n + 1 end
  end
until cursor == '0'
return n
"""

    def followed_streams(self):
        """Token streams some API replica is following now (a live attach lease each)."""
        return int(self.call("EVAL", self.FOLLOWED_SCRIPT, "0"))


def delta(before, after):
    calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
    calls = {k: v for k, v in calls.items() if v > 0}
    return {"calls": calls, "total": sum(calls.values()), "cpu": after["cpu"] - before["cpu"], "seconds": after["at"] - before["at"]}


class MonitorSample:
    """MONITOR on a connection of its own, in a thread: waits `delay` seconds, then keeps what Redis echoes for
    `seconds` and closes. Redis also echoes the commands a script runs (client part `lua`), which commandstats counts
    as well; the sample gives, per command name, the share that clients sent. Parsed only once joined, so that the
    thread does little while the load runs. MONITOR slows Redis while it is on: keep the window short."""

    def __init__(self, redis, delay, seconds):
        self.port, self.password, self.delay, self.seconds = redis.port, redis.password, delay, seconds
        # The bench's own connection: what it sends is not the services'.
        self.own = f"127.0.0.1:{redis.sock.getsockname()[1]}".encode()
        self.chunks, self.error, self.window = [], None, 0.0
        self.thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            time.sleep(self.delay)
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(resp("AUTH", self.password) + resp("MONITOR"))
                started = time.monotonic()
                while (now := time.monotonic()) - started < self.seconds:
                    try:
                        chunk = sock.recv(1 << 20)
                    except socket.timeout:
                        continue
                    if not chunk:
                        break
                    self.chunks.append(chunk)
                self.window = now - started
        except OSError as error:
            self.error = str(error)

    def result(self):
        """{"client": {name: n}, "lua": {name: n}, "seconds": window} once the sample ends; None if it failed."""
        self.thread.join(self.delay + self.seconds + 10)
        data = b"".join(self.chunks)
        if self.error or self.thread.is_alive() or data.startswith(b"-"):
            log(f"MONITOR sample failed: {self.error or data[:80]!r}")
            return None
        counts = {"client": {}, "lua": {}}
        for client, name in MONITOR_LINE.findall(data):
            name = name.decode(errors="replace").lower()
            if client == self.own or name in OWN_COMMANDS:
                continue
            kind = counts["lua" if client == b"lua" else "client"]
            kind[name] = kind.get(name, 0) + 1
        return dict(counts, seconds=self.window)


def split_calls(calls, sample):
    """Commandstats calls split into client-sent and run inside scripts, name by name: a name's calls times its
    client-sent share in the MONITOR sample. A name the sample did not see counts as client-sent (an upper bound),
    and is listed under "unsampled"."""
    client, lua, unsampled = {}, {}, {}
    for key, count in calls.items():
        name = key.split("|")[0]  # commandstats names subcommands `client|setname`; MONITOR shows `CLIENT` `SETNAME`
        sent, inside = sample["client"].get(name, 0), sample["lua"].get(name, 0)
        if sent + inside == 0:
            unsampled[key] = count
        share = sent / (sent + inside) if sent + inside else 1.0
        client[key] = count * share
        lua[key] = count - client[key]
    return {"client": client, "lua": lua, "unsampled": unsampled,
            "client_total": sum(client.values()), "lua_total": sum(lua.values())}


# ---------------------------------------------------------------------------------------------------------------
# Configuration: what the AppHost gives each service


def flatten(prefix, value, into):
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}__{key}" if prefix else key, inner, into)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            flatten(f"{prefix}__{index}", inner, into)
    elif value is not None:
        into[prefix] = str(value).lower() if isinstance(value, bool) else str(value)
    return into


def apphost_settings():
    """The AppHost's appsettings.json: its Services:<name> sections become each service's environment, as
    ServiceSettings.WithServiceSettings does, and its replica counts and Redis settings apply here too."""
    path = ROOT / "src/AppHost/appsettings.json"
    try:
        text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)
        return json.loads(text)
    except (OSError, json.JSONDecodeError):
        return {}


class Stack:
    """redis-server, StreamApi and Worker replicas and the gateway, as plain processes."""

    def __init__(self, args, settings):
        self.args = args
        self.settings = settings
        services = settings.get("Services", {})
        self.sections = {name: flatten("", services.get(name, {}), {}) for name in ("All", "StreamApi", "Worker", "Gateway")}
        self.api_replicas = int(settings.get("StreamApi", {}).get("Replicas", 2))
        self.worker_replicas = int(settings.get("Worker", {}).get("Replicas", 2))
        self.redis = None
        self.redis_proc = None
        self.apis, self.workers, self.gateway = [], [], None
        self.generation = 0

    def start_redis(self):
        self.redis_port = free_port()
        self.password = secrets.token_hex(16)
        folder = OUT / "redis"
        folder.mkdir(exist_ok=True)
        conf = folder / "redis.conf"
        conf.write_text(f'requirepass "{self.password}"\n')
        conf.chmod(0o600)
        self.redis_proc = Proc("redis", ["redis-server", str(conf), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                         "--dir", str(folder), "--maxmemory", self.args.redis_maxmemory,
                                         "--maxmemory-policy", "noeviction", "--save", "", "--appendonly", "no"], os.environ.copy())
        deadline = time.monotonic() + 20
        while True:
            try:
                self.redis = Redis(self.redis_port, self.password)
                self.redis.call("PING")
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or not self.redis_proc.alive():
                    raise RuntimeError(f"redis-server did not start; see {self.redis_proc.log_path}")
                time.sleep(0.2)

    def env(self, section, extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({
            "DOTNET_ENVIRONMENT": "Production",
            "ASPNETCORE_ENVIRONMENT": "Production",
            "ASPNETCORE_URLS": "http://127.0.0.1:0",
            "DOTNET_NOLOGO": "1",
            "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
        })
        env.update(self.sections["All"])
        env.update(self.sections[section])
        # One load machine is one client address: the per-client stream limit is lifted, as bench/soak.sh does.
        env["Streaming__MaxConcurrentStreamsPerClient"] = "0"
        env.update(extra)
        return env

    def service(self, project, name, section, extra):
        directory = ROOT / "src" / project / "bin" / CONFIG / TFM
        return Proc(name, ["dotnet", str(directory / f"VixAspire.{project}.dll")], self.env(section, extra), cwd=directory)

    def start_services(self, worker_extra=None):
        """Fresh StreamApi, Worker and gateway processes (Redis stays)."""
        self.generation += 1
        g = self.generation
        redis = {"ConnectionStrings__redis": f"127.0.0.1:{self.redis_port},password={self.password}"}
        worker = dict(redis)
        worker.update({
            "Worker__MaxConcurrency": str(self.args.worker_concurrency),
            "Providers__Synthetic__FirstTokenDelay": "00:00:00",
            "Providers__Synthetic__TokenDelay": f"00:00:00.{self.args.token_delay_ms:03d}",
        })
        worker.update(worker_extra or {})
        # StreamApi's two endpoints as the AppHost gives them: HTTP/1.1 for clients, cleartext HTTP/2 for the gateway.
        endpoints = [(free_port(), free_port()) for _ in range(self.api_replicas)]
        self.apis = [self.service("StreamApi", f"streamapi-{i}.{g}", "StreamApi", dict(redis, **{
            "Kestrel__Endpoints__http__Url": f"http://127.0.0.1:{http}",
            "Kestrel__Endpoints__h2__Url": f"http://127.0.0.1:{h2}",
            "Kestrel__Endpoints__h2__Protocols": "Http2",
        })) for i, (http, h2) in enumerate(endpoints)]
        self.workers = [self.service("Worker", f"worker-{i}.{g}", "Worker", worker) for i in range(self.worker_replicas)]
        for proc in self.apis + self.workers:
            proc.wait_listening()
        destinations = {}
        for i, (api, (http, h2)) in enumerate(zip(self.apis, endpoints)):
            api.address = f"http://127.0.0.1:{http}"
            destinations[f"services__streamapi__http__{i}"] = api.address
            destinations[f"services__streamapi__h2__{i}"] = f"http://127.0.0.1:{h2}"
        self.gateway = self.service("Gateway", f"gateway.{g}", "Gateway", destinations)
        self.gateway.wait_listening()
        wait_healthy(self.gateway.address)

    def stop_services(self):
        for proc in [self.gateway] + self.apis + self.workers:
            if proc is not None:
                proc.stop()

    def processes(self):
        return [("gateway", self.gateway)] + [(f"streamapi-{i}", p) for i, p in enumerate(self.apis)] + \
               [(f"worker-{i}", p) for i, p in enumerate(self.workers)] + [("redis-server", self.redis_proc)]


def start_baseline(args, generation):
    directory = ROOT / "bench/Baseline/bin" / CONFIG / TFM
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({
        "DOTNET_ENVIRONMENT": "Production",
        "ASPNETCORE_ENVIRONMENT": "Production",
        "ASPNETCORE_URLS": "http://127.0.0.1:0",
        "Providers__Synthetic__FirstTokenDelay": "00:00:00",
        "Providers__Synthetic__TokenDelay": f"00:00:00.{args.token_delay_ms:03d}",
        "Logging__LogLevel__Default": "Warning",
        "Logging__LogLevel__Microsoft.Hosting.Lifetime": "Information",
    })
    proc = Proc(f"baseline.{generation}", ["dotnet", str(directory / "VixAspire.Bench.Baseline.dll")], env, cwd=directory)
    proc.wait_listening()
    wait_healthy(proc.address)
    return proc


def wait_healthy(address, timeout=60):
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address}/health did not answer 200 within {timeout} s")
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------------------
# Load


LOADTEST = ROOT / "src/LoadTest/bin" / CONFIG / TFM / "VixAspire.LoadTest.dll"


class Load:
    """One load-tool process; its JSON report and its own CPU time once it ends."""

    def __init__(self, name, url, concurrency, seconds=None, streams=None, model="synthetic", max_tokens=32, rate=0, warmup=0):
        self.name = name
        self.json = OUT / f"load-{name}.json"
        args = ["dotnet", str(LOADTEST), "--url", url, "--streams", str(streams or 100_000_000), "--concurrency", str(concurrency),
                "--model", model, "--max-tokens", str(max_tokens), "--no-progress", "--json", str(self.json)]
        if seconds:
            args += ["--duration", f"{seconds}s"]
        if rate:
            args += ["--rate", str(rate)]
        if warmup:
            args += ["--warmup", str(warmup)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.started = time.monotonic()
        self.proc = Proc(f"load-{name}", args, env)
        self.timed_out = False

    def finish(self, timeout):
        """The report (None when the tool wrote none); the tool is stopped (SIGTERM: it reports what it has) at timeout."""
        if not self.proc.wait(timeout):
            self.timed_out = True
            self.proc.signal(signal.SIGTERM)
            if not self.proc.wait(30):
                self.proc.signal(signal.SIGKILL)
                self.proc.wait(5)
        self.wall = time.monotonic() - self.started
        try:
            report = json.loads(self.json.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        usage = self.proc.rusage
        report["client_cpu_seconds"] = (usage.ru_utime + usage.ru_stime) if usage else None
        report["client_wall_seconds"] = self.wall
        report["timed_out"] = self.timed_out
        return report


def cpu_of(procs):
    return {name: p.cpu_seconds() for name, p in procs}


def measured_run(name, url, concurrency, seconds, stack=None, max_tokens=32, monitor=(3, 2)):
    """One load run; with a stack, the CPU each of its processes used, Redis's command and CPU deltas, and a MONITOR
    sample of `monitor` = (delay, seconds) into the run that splits the commands into client-sent and script-internal."""
    procs = stack.processes() if stack else []
    cpu_before = cpu_of(procs)
    redis_before = stack.redis.snapshot() if stack else None
    sample = MonitorSample(stack.redis, *monitor) if stack else None
    started = time.monotonic()
    # The tool's own first streams (its JIT, its connections) run first and are left out of its report.
    warmup = max(3, concurrency)
    load = Load(name, url, concurrency, seconds=seconds, max_tokens=max_tokens, warmup=warmup)
    report = load.finish(seconds + 60 + concurrency / 25)
    wall = time.monotonic() - started
    sample = sample.result() if sample else None
    if report is None:
        log(f"{name}: the load tool wrote no report (exit {load.proc.popen.returncode}); see {load.proc.log_path}")
        return {"name": name, "report": None}
    # Redis and the services also served the warm-up streams: their tokens count as delivered (each is complete).
    result = {"name": name, "report": report, "wall": wall, "delivered": report["tokens"] + warmup * max_tokens}
    if stack:
        result["redis"] = delta(redis_before, stack.redis.snapshot())
        result["monitor"] = sample
        if sample:
            result["redis"].update(split_calls(result["redis"]["calls"], sample))
        after = cpu_of(procs)
        result["cpu"] = {k: (after[k] - cpu_before[k]) / wall for k in after if after[k] is not None and cpu_before[k] is not None}
        result["dead"] = [k for k, p in procs if not p.alive()]
    s = report["streams"]
    log(f"{name}: {s['completed']}/{s['started']} complete, {s['failed']} failed, {report['tokens_per_second']:.0f} tokens/s, "
        f"TTFT p50 {report['time_to_first_token_ms']['p50']} p99 {report['time_to_first_token_ms']['p99']} ms")
    return result


def tools_run(args, url, stack):
    """bench/tools.mjs at args.tools_level agents through url: tool-calling turns against plain ones (two round trips
    each), interleaved in the same run. Its JSON report, or {"skipped"/"error": why}."""
    node = shutil.which("node")
    if node is None:
        return {"skipped": "node is not installed"}
    seconds = args.tools_seconds or args.seconds
    path = OUT / "tools.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = Proc("tools", [node, str(ROOT / "bench/tools.mjs"), "--url", url, "--concurrency", str(args.tools_level),
                          "--seconds", str(seconds), "--max-tokens", str(args.tokens), "--json", str(path)], env)
    if not proc.wait(seconds + 240):
        proc.stop()
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"error": f"bench/tools.mjs wrote no report (exit {proc.popen.returncode}); see {proc.log_path}"}
    report["dead"] = [k for k, p in stack.processes() if not p.alive()]
    for mode in ("tools", "plain"):
        m = report[mode]
        log(f"tools-{mode}-c{args.tools_level}: {m['turns']['completed']}/{m['turns']['started']} turns complete, "
            f"TTFT p50 {m['ttft_ms']['p50']} p99 {m['ttft_ms']['p99']} ms, completion p50 {m['completion_ms']['p50']} p99 {m['completion_ms']['p99']} ms")
    return report


def warm_up(name, url):
    """Ten seconds of load at 200 streams, left out of every figure: .NET compiles hot code again, optimised, only
    after it has run a while (tiered compilation), and a few hundred short streams left the first measured level
    running partly unoptimised code (its TTFT p99 several times that of the same level run later)."""
    Load(f"warmup-{name}", url, 200, seconds=10, max_tokens=32).finish(60)


# ---------------------------------------------------------------------------------------------------------------
# Idle hold


def hold(name, url, port, args, servers, redis=None):
    """Opens args.hold idle streams (synthetic-stall: a start event, then heartbeats only) through url, from several
    load-tool processes; measures the servers' memory before and while holding, and Redis's commands over an idle
    window; then stops the clients (each reports its streams as interrupted, or failed with why)."""
    n, clients = args.hold, max(1, args.hold_clients)
    before = {k: p.rss_kib() for k, p in servers}
    fds_before = {k: p.fds() for k, p in servers}
    accepted_before = established(port)
    share = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    loads = [Load(f"hold-{name}-{i}", url, count, streams=count, model="synthetic-stall", max_tokens=8,
                  rate=args.hold_rate / clients) for i, count in enumerate(share)]
    ramp_deadline = time.monotonic() + n / args.hold_rate + args.hold_settle
    open_now, last_change, last = 0, time.monotonic(), -1
    # Held: the server has accepted the connection and, for VixAspire, an API replica follows the stream.
    while time.monotonic() < ramp_deadline:
        open_now = established(port) - accepted_before
        if redis and open_now >= n:
            # Accepted by the gateway is not yet held: wait until an API replica follows each stream.
            open_now = min(open_now, redis.followed_streams())
        if open_now != last:
            last, last_change = open_now, time.monotonic()
        if open_now >= n or (time.monotonic() - last_change > 10 and time.monotonic() > ramp_deadline - args.hold_settle):
            break
        if any(not l.proc.alive() for l in loads):
            break
        time.sleep(1)
    time.sleep(3)
    held = {"accepted": established(port) - accepted_before}
    if redis:
        held["followed"] = redis.followed_streams()
    rss_held = {k: p.rss_kib() for k, p in servers}
    # Descriptors open on the whole machine: the load tool's sockets count too, and the machine has a ceiling.
    file_handles = int(open("/proc/sys/fs/file-nr").read().split()[0])
    log(f"hold {name}: {held} of {n} held; idle window of {args.idle_window} s")
    redis_before = redis.snapshot() if redis else None
    # Redis is all but idle here: MONITOR covers the whole window, so that it sees the worker's renewal script,
    # which runs only every claim interval.
    sample = MonitorSample(redis, 0, args.idle_window) if redis else None
    time.sleep(args.idle_window)
    idle = delta(redis_before, redis.snapshot()) if redis else None
    if sample and (monitored := sample.result()):
        idle.update(split_calls(idle["calls"], monitored), monitor=monitored)
    held_end = {"accepted": established(port) - accepted_before}
    if redis:
        held_end["followed"] = redis.followed_streams()
    rss_end = {k: p.rss_kib() for k, p in servers}
    fds_held = {k: p.fds() for k, p in servers}
    alive_during = {k: p.alive() for k, p in servers}
    for l in loads:
        l.proc.signal(signal.SIGTERM)
    reports = [l.finish(45) for l in loads]
    streams = {"requested": n, "interrupted": 0, "failed": 0, "completed": 0, "errors": {}}
    for report in reports:
        if report is None:
            streams["errors"]["no_report"] = streams["errors"].get("no_report", 0) + 1
            continue
        for key in ("interrupted", "failed", "completed"):
            streams[key] += report["streams"][key]
        for kind, count in report["errors"].items():
            streams["errors"][kind] = streams["errors"].get(kind, 0) + count
    held_count = min(held.values())
    per_stream = None
    if held_count > 0:
        grown = sum(max(rss_held[k], rss_end[k] or 0) - before[k] for k in before if before[k] and rss_held[k])
        per_stream = grown / held_count
    return {
        "requested": n, "clients": clients, "held": held, "held_end": held_end, "streams": streams,
        "rss_before": before, "rss_held": rss_held, "rss_end": rss_end, "fds_before": fds_before, "fds_held": fds_held,
        "kib_per_stream": per_stream, "idle": idle, "alive_during": alive_during, "file_handles": file_handles,
    }


def recovered(url, name):
    report = Load(f"recovery-{name}", url, 1, streams=3, max_tokens=8).finish(60)
    return bool(report and report["streams"]["completed"] == 3)


# ---------------------------------------------------------------------------------------------------------------
# The AppHost


def apphost_section(args, baseline_rows):
    port = args.apphost_port
    if not port_free(port):
        return {"skipped": f"port {port} is in use (is ./run.sh running?)"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"Gateway__Port": str(port), "DOTNET_NOLOGO": "1", "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
                "Services__All__Streaming__MaxConcurrentStreamsPerClient": "0"})
    run = Proc("apphost", ["dotnet", "run", "--no-build", "-c", CONFIG, "--project", str(ROOT / "src/AppHost"),
                           "--launch-profile", "http"], env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    result = {"url": url}
    try:
        wait_healthy(url, timeout=180)
        time.sleep(2)
        tree = {pid: cmdline(pid) for pid in descendants(run.pid)}
        services = {pid: c for pid, c in tree.items() if re.search(r"VixAspire\.(StreamApi|Worker|Gateway)|redis-server", c)}
        result["services"] = len(services)
        warm_up("apphost", url)
        rows = {}
        for level in args.apphost_levels:
            rows[level] = measured_run(f"apphost-c{level}", url, level, seconds_for(args, level))
        result["rows"] = rows
        overload = Load("apphost-overload", url, args.overload, seconds=args.overload_seconds)
        report = overload.finish(args.overload_seconds + 120)
        result["overload"] = report
        result["dead_after_overload"] = [services[pid] for pid in services if not pid_alive(pid)]
        result["gateway_alive"] = True
        try:
            wait_healthy(url, timeout=30)
        except RuntimeError:
            result["gateway_alive"] = False
        result["recovered"] = recovered(url, "apphost")
    except RuntimeError as error:
        result["error"] = str(error)
    finally:
        stop_apphost(run)
    return result


def stop_apphost(run):
    """SIGTERM to the AppHost (dotnet run's child), which stops its resources; then whatever of its tree is left."""
    tree = descendants(run.pid)
    apphost = [pid for pid in tree if "AppHost" in cmdline(pid) and "dotnet run" not in cmdline(pid)]
    for pid in apphost or [run.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    run.wait(45)
    for pid in tree:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    run.stop(5)


# ---------------------------------------------------------------------------------------------------------------
# Report


def seconds_for(args, level):
    return args.short_seconds if level <= 1 else args.seconds


def machine():
    def first(path, key):
        try:
            for line in open(path):
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    def output(*command):
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    os_name = "?"
    try:
        os_name = dict(line.rstrip().split("=", 1) for line in open("/etc/os-release") if "=" in line).get("PRETTY_NAME", "?").strip('"')
    except OSError:
        pass
    commit = output("git", "rev-parse", "--short", "HEAD")
    if output("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return {
        "CPU": first("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "RAM": f"{int(first('/proc/meminfo', 'MemTotal').split()[0]) / 1024 / 1024:.1f} GiB",
        "OS": f"{os_name}, Linux {platform.release()}",
        ".NET": output("dotnet", "--version"),
        "redis": re.sub(r"\s*sha=.*", "", output("redis-server", "--version")),
        "git": f"{output('git', 'rev-parse', '--abbrev-ref', 'HEAD')} {commit}",
        "open files": output("sh", "-c", "ulimit -Sn; ulimit -Hn").replace("\n", " soft / ") + " hard",
    }


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, (int, float)) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def ttft(row, key):
    report = row.get("report") if row else None
    return report["time_to_first_token_ms"][key] if report and report["time_to_first_token_ms"]["count"] else None


def tps(row):
    report = row.get("report") if row else None
    return report["tokens_per_second"] if report else None


def ratio(a, b):
    return a / b if a is not None and b else None


def minus(a, b):
    return a - b if a is not None and b is not None else None


def outcome(row):
    report = row.get("report") if row else None
    if not report:
        return "no report"
    s = report["streams"]
    text = f"{s['completed']:,}/{s['started']:,}"
    if s["failed"]:
        text += f", {s['failed']:,} failed ({', '.join(f'{k} {v}' for k, v in report['errors'].items())})"
    if report.get("timed_out"):
        text += ", stopped at its deadline"
    return text


def client_cpu(row):
    report = row.get("report") if row else None
    if not report or report.get("client_cpu_seconds") is None:
        return None
    return 100 * report["client_cpu_seconds"] / report["client_wall_seconds"]


def render_tools(args, tools, w):
    w(f"\nTool-calling streams (bench/tools.mjs, the same stack): {args.tools_level:,} agents for {args.tools_seconds or args.seconds} s, "
      "each alternating a tools turn (a call with `tool_choice: required` streamed to `[DONE]`, then the result sent back "
      "and the answer streamed) and a plain turn (two plain prompts, the same max_tokens). TTFT: step 1's first delta; "
      "completion: the end of step 2, from step 1's start.\n")
    if "skipped" in tools or "error" in tools:
        w(f"Not measured: {tools.get('skipped') or tools.get('error')}.")
        return
    w("| streams | mode | TTFT p50 / p99 (ms) | completion p50 / p99 (ms) | complete | output tokens step 1 + 2 |")
    w("|---:|---|---|---|---|---|")
    for mode in ("tools", "plain"):
        m = tools[mode]
        t = m["turns"]
        done = f"{t['completed']:,}/{t['started']:,}" + (f", {t['failed']:,} failed ({', '.join(f'{k} {v}' for k, v in m['errors'].items())})" if t["failed"] else "")
        w(f"| {tools['concurrency']:,} | {mode} | {fmt(m['ttft_ms']['p50'])} / {fmt(m['ttft_ms']['p99'])} "
          f"| {fmt(m['completion_ms']['p50'])} / {fmt(m['completion_ms']['p99'])} | {done} "
          f"| {fmt(m['output_tokens']['step1'])} + {fmt(m['output_tokens']['step2'])} |")
    r = tools["ratio"]
    w(f"| | tools / plain | {fmt(r['ttft']['p50'], 2)} / {fmt(r['ttft']['p99'], 2)} | {fmt(r['completion']['p50'], 2)} / {fmt(r['completion']['p99'], 2)} | | |")
    tp, pp = tools["tools"], tools["plain"]
    w(f"\nStep 2 alone (the answer, {tools['max_tokens']} tokens both ways): TTFT p50 / p99 tools {fmt(tp['step2_ttft_ms']['p50'])} / "
      f"{fmt(tp['step2_ttft_ms']['p99'])}, plain {fmt(pp['step2_ttft_ms']['p50'])} / {fmt(pp['step2_ttft_ms']['p99'])} ms "
      f"(ratio {fmt(r['step2_ttft']['p50'], 2)} / {fmt(r['step2_ttft']['p99'], 2)}); completion tools {fmt(tp['step2_ms']['p50'])} / "
      f"{fmt(tp['step2_ms']['p99'])}, plain {fmt(pp['step2_ms']['p50'])} / {fmt(pp['step2_ms']['p99'])} ms "
      f"(ratio {fmt(r['step2']['p50'], 2)} / {fmt(r['step2']['p99'], 2)}). Step 1's tool call is one model update where the plain "
      f"answer is {tools['max_tokens']} tokens, which is why whole-turn completion is shorter with tools.")
    if tools.get("dead"):
        w(f"\n**Died during the tool-calling step: {', '.join(tools['dead'])}.**")


def render(args, info, rows, holds, apphost, elapsed, tools=None):
    lines = []
    w = lines.append
    w("## Performance table (bench/perf.sh)\n")
    w("| machine | |\n|---|---|")
    for key, value in info.items():
        w(f"| {key} | {value} |")
    w(f"| load average (1 min) at start / end | {info_load[0]} / {os.getloadavg()[0]:.2f} |")
    w(f"\nSynthetic model: first-token delay 0, {args.token_delay_ms} ms between tokens, {args.tokens} tokens a stream. "
      f"Each level runs {args.seconds} s ({args.short_seconds} s at 1 stream), the baseline then VixAspire (gateway → "
      f"{args.api_replicas} StreamApi → Redis ← {args.worker_replicas} Workers). Whole run: {elapsed:.0f} s.\n")

    w("| streams | TTFT p50 baseline / VixAspire / overhead (ms) | TTFT p99 baseline / VixAspire / overhead (ms) "
      "| tokens/s baseline / VixAspire / ratio | pace ceiling (tokens/s) | complete (baseline; VixAspire) |")
    w("|---:|---|---|---|---:|---|")
    for level in args.levels:
        b, v = rows[level]["baseline"], rows[level]["vix"]
        w(f"| {level:,} | {fmt(ttft(b, 'p50'))} / {fmt(ttft(v, 'p50'))} / {fmt(minus(ttft(v, 'p50'), ttft(b, 'p50')))} "
          f"| {fmt(ttft(b, 'p99'))} / {fmt(ttft(v, 'p99'))} / {fmt(minus(ttft(v, 'p99'), ttft(b, 'p99')))} "
          f"| {fmt(tps(b))} / {fmt(tps(v))} / {fmt(ratio(tps(v), tps(b)), 2)} | {level * 1000 / args.token_delay_ms:,.0f} "
          f"| {outcome(b)}; {outcome(v)} |")

    w("\nRedis per delivered token, and where the CPU went (cores, averaged over each VixAspire run):\n")
    w("| streams | Redis round trips / token | commands executed / token | Redis CPU µs / token | Redis commands executed/s "
      "| top client-sent commands (estimated, over the run) | MONITOR sample | load client CPU baseline / VixAspire "
      "| gateway | StreamApi (sum) | Worker (sum) | redis |")
    w("|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|")
    for level in args.levels:
        v = rows[level]["vix"]
        redis, cpu = v.get("redis"), v.get("cpu", {})
        tokens = v.get("delivered", 0)
        per_token = redis["total"] / tokens if redis and tokens else None
        cpu_token = 1e6 * redis["cpu"] / tokens if redis and tokens else None
        w(f"| {level:,} | {fmt(round_trips(v), 3)} | {fmt(per_token, 3)} | {fmt(cpu_token, 2)} "
          f"| {fmt(redis['total'] / redis['seconds'] if redis else None, 0)} | {top_client_text(redis)} | {sample_text(v.get('monitor'))} "
          f"| {fmt(client_cpu(rows[level]['baseline']), 0)}% / {fmt(client_cpu(v), 0)}% "
          f"| {fmt(cpu.get('gateway'), 2)} | {fmt(sum(c for k, c in cpu.items() if k.startswith('streamapi')), 2)} "
          f"| {fmt(sum(c for k, c in cpu.items() if k.startswith('worker')), 2)} | {fmt(cpu.get('redis-server'), 2)} |")
    dead = sorted({d for level in args.levels for d in rows[level]["vix"].get("dead", [])})
    if dead:
        w(f"\n**Died during the table: {', '.join(dead)}.**")
    if tools is not None:
        render_tools(args, tools, w)

    w(f"\nIdle hold: {args.hold:,} streams of `synthetic-stall` (a start event, then only a `: ping` every heartbeat "
      f"interval), opened at {args.hold_rate:,}/s from {args.hold_clients} load-tool processes, held through an idle window of {args.idle_window} s.\n")
    w("| | baseline | VixAspire |\n|---|---|---|")
    b, v = holds.get("baseline"), holds.get("vix")

    def hold_cell(h, render_):
        return render_(h) if h and "error" not in h else (h or {}).get("error", "not run")

    w(f"| streams held (server side, at window start / end) | {hold_cell(b, held_text)} | {hold_cell(v, held_text)} |")
    w(f"| client outcome | {hold_cell(b, client_text)} | {hold_cell(v, client_text)} |")
    w(f"| RSS before → holding (MiB) | {hold_cell(b, rss_text)} | {hold_cell(v, rss_text)} |")
    w(f"| memory per held stream | {hold_cell(b, per_stream_text)} | {hold_cell(v, per_stream_text)} (gateway + StreamApi replicas) |")
    w(f"| open descriptors before → holding | {hold_cell(b, fds_text)} | {hold_cell(v, fds_text)} |")
    w(f"| Redis commands in the idle window | – | {hold_cell(v, lambda h: idle_text(h, args))} |")
    w(f"| every process alive, then a new stream completes | {hold_cell(b, alive_text)} | {hold_cell(v, alive_text)} |")

    w("\nGoals (one run, against the baseline of the same run):\n")
    w("| goal | measured | met |\n|---|---|---|")
    for goal, measured, met in goals(args, rows, holds):
        w(f"| {goal} | {measured} | {'yes' if met else ('no' if met is False else '–')} |")

    w("\nThe AppHost (as ./run.sh starts it, Release, its defaults; the per-client stream limit lifted as above):\n")
    if apphost is None:
        w("Skipped (--skip-apphost).")
    elif "skipped" in apphost or "error" in apphost:
        w(f"Not measured: {apphost.get('skipped') or apphost.get('error')}.")
    else:
        w("| streams | TTFT p50 / p99 (ms) | tokens/s | complete | VixAspire as plain processes: TTFT p50 / p99, tokens/s |")
        w("|---:|---|---:|---|---|")
        for level, row in apphost["rows"].items():
            plain = rows.get(level, {}).get("vix")
            w(f"| {level:,} | {fmt(ttft(row, 'p50'))} / {fmt(ttft(row, 'p99'))} | {fmt(tps(row))} | {outcome(row)} "
              f"| {fmt(ttft(plain, 'p50'))} / {fmt(ttft(plain, 'p99'))}, {fmt(tps(plain))} |")
        o = apphost.get("overload")
        text = outcome({"report": o}) if o else "no report"
        w(f"\nOverload: {args.overload:,} concurrent streams for {args.overload_seconds} s: {text}; TTFT p99 "
          f"{fmt(o['time_to_first_token_ms']['p99'] if o else None)} ms. Afterwards: "
          f"{'every service process alive' if not apphost['dead_after_overload'] else 'died: ' + ', '.join(apphost['dead_after_overload'])}, "
          f"gateway {'healthy' if apphost['gateway_alive'] else 'NOT healthy'}, new streams {'complete' if apphost['recovered'] else 'FAIL'}.")
    w(f"\nLogs and JSON reports: {OUT}")
    return "\n".join(lines)


def held_text(h):
    return f"{min(h['held'].values()):,} / {min(h['held_end'].values()):,} of {h['requested']:,}" + \
        (f" (accepted {h['held']['accepted']:,}, followed by an API {h['held']['followed']:,})" if "followed" in h["held"] else "")


def client_text(h):
    s = h["streams"]
    text = f"{s['interrupted']:,} held until stopped, {s['failed']:,} failed"
    if s["errors"]:
        text += " (" + ", ".join(f"{k} {v:,}" for k, v in s["errors"].items()) + ")"
    return text


def rss_text(h):
    def held(k):
        rss = max(h["rss_held"][k] or 0, h["rss_end"][k] or 0)
        return f"{rss / 1024:.0f}" if rss else "died"
    return ", ".join(f"{k} {h['rss_before'][k] / 1024:.0f} → {held(k)}" for k in h["rss_before"] if h["rss_before"][k])


def per_stream_text(h):
    return f"{h['kib_per_stream']:.1f} KiB" if h["kib_per_stream"] is not None else "–"


def fds_text(h):
    return ", ".join(f"{k} {h['fds_before'][k]} → {h['fds_held'][k] if h['fds_held'][k] is not None else 'died'}" for k in h["fds_before"]) + \
        f"; on the whole machine {h['file_handles']:,}"


def round_trips(row):
    """Client-sent Redis commands per delivered token (None without a MONITOR sample)."""
    redis, tokens = (row or {}).get("redis"), (row or {}).get("delivered")
    return redis["client_total"] / tokens if redis and "client_total" in redis and tokens else None


def by_count(calls, n=None):
    return ", ".join(f"{k} {c:,.0f}" for k, c in sorted(calls.items(), key=lambda i: -i[1])[:n] if round(c) > 0)


def top_client_text(redis):
    if not redis or "client" not in redis:
        return "no MONITOR sample"
    text = by_count(redis["client"], 4)
    if redis["unsampled"]:
        text += f" (not in the sample, counted as client-sent: {by_count(redis['unsampled'])})"
    return text


def sample_text(sample):
    if not sample:
        return "failed"
    sent, inside = sum(sample["client"].values()), sum(sample["lua"].values())
    return f"{sample['seconds']:.1f} s, {sent + inside:,} commands, {100 * sent / max(1, sent + inside):.0f}% client-sent"


def idle_per_interval(h, args, kind="calls"):
    """Commands per held stream per heartbeat interval, in all and by command, over the idle window; kind "calls"
    is every command executed, "client" the client-sent ones, "lua" those run inside scripts."""
    idle = h["idle"]
    intervals = min(h["held"].values()) * idle["seconds"] / args.heartbeat_seconds
    if intervals <= 0 or kind not in idle:
        return None, {}
    calls = idle[kind]
    return sum(calls.values()) / intervals, {k: v / intervals for k, v in sorted(calls.items(), key=lambda i: -i[1]) if v / intervals >= 0.005}


def idle_text(h, args):
    idle = h["idle"]
    head = f"{idle['total']:,} executed in {idle['seconds']:.0f} s; per held stream per heartbeat interval ({args.heartbeat_seconds:g} s): "
    if "client" not in idle:
        total, by_command = idle_per_interval(h, args)
        return head + f"{fmt(total, 2)} (no MONITOR sample): {', '.join(f'{k} {v:.2f}' for k, v in by_command.items()) or 'none'}"
    parts = []
    for kind, label in (("client", "client-sent"), ("lua", "inside scripts")):
        total, by_command = idle_per_interval(h, args, kind)
        parts.append(f"{label} {fmt(total, 2)} ({', '.join(f'{k} {v:.2f}' for k, v in by_command.items()) or 'none'})")
    unsampled = f"; not in the sample, counted as client-sent: {by_count(idle['unsampled'])}" if idle["unsampled"] else ""
    return head + "; ".join(parts) + unsampled


def alive_text(h):
    dead = [k for k, ok in h["alive_during"].items() if not ok] + h.get("dead_after", [])
    return ("all alive" if not dead else "died: " + ", ".join(sorted(set(dead)))) + \
        (", recovered" if h.get("recovered") else ", did NOT recover")


def goals(args, rows, holds):
    out = []

    def row(level, target):
        return rows.get(level, {}).get(target)

    for level, key, limit in ((100, "p50", 2), (100, "p99", 10), (1000, "p99", 25)):
        if level in rows:
            over = minus(ttft(row(level, "vix"), key), ttft(row(level, "baseline"), key))
            out.append((f"TTFT overhead {key} ≤ {limit} ms at {level:,} streams", f"{fmt(over)} ms", over is not None and over <= limit))
    best = max(args.levels, key=lambda l: tps(row(l, "vix")) or 0)
    top = tps(row(best, "vix"))
    out.append(("≥ 50,000 tokens/s through the gateway", f"{fmt(top)} tokens/s at {best:,} streams "
                f"(pace ceiling {best * 1000 / args.token_delay_ms:,.0f})", top is not None and top >= 50_000))
    r = ratio(top, tps(row(best, "baseline")))
    out.append(("≥ half the baseline's tokens/s", f"{fmt(r, 2)} × at {best:,} streams", r is not None and r >= 0.5))
    if 1000 in rows:
        v = row(1000, "vix")
        redis, report = v.get("redis"), v.get("report")
        tokens = v.get("delivered")
        per = round_trips(v)
        executed = redis["total"] / tokens if redis and tokens else None
        out.append(("≤ 0.25 Redis round trips per delivered token at 1,000 streams",
                    f"{fmt(per, 3)} (client-sent commands; {fmt(executed, 3)} executed, scripts' own included)", per is not None and per <= 0.25))
        cpu = 1e6 * redis["cpu"] / tokens if redis and tokens else None
        out.append(("Redis CPU per delivered token (reported)", f"{fmt(cpu, 2)} µs", None))
    h = holds.get("vix")
    if h and "error" not in h:
        held = min(min(h["held"].values()), min(h["held_end"].values()))
        out.append((f"≥ 10,000 concurrent open streams through the gateway (asked {args.hold:,})",
                    f"{held:,} held, {h['streams']['failed']:,} failed", held >= 10_000 and h["streams"]["failed"] == 0))
        per = h["kib_per_stream"]
        out.append(("≤ 64 KiB per stream across gateway and StreamApi", per_stream_text(h), per is not None and per <= 64))
        kinds = ("client", "lua") if "client" in h["idle"] else ("calls",)
        measured = []
        for kind in kinds:
            total, by_command = idle_per_interval(h, args, kind)
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(by_command.items())[:4])
            label = {"client": "client-sent round trips", "lua": "run inside scripts", "calls": "commands executed"}[kind]
            measured.append(f"{fmt(total, 2)} {label} ({top or 'none'})")
        out.append(("no Redis command for idle streams between heartbeats (the heartbeat's own commands are the least possible)",
                    "; ".join(measured) + " per idle stream per heartbeat interval", None))
    return out


info_load = [0.0]


def main():
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--levels", default="1,100,1000", help="concurrent streams per row (default 1,100,1000)")
    parser.add_argument("--seconds", type=int, default=20, help="load duration per row (default 20)")
    parser.add_argument("--short-seconds", type=int, default=10, help="load duration of the 1-stream row (default 10)")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--token-delay-ms", type=int, default=20)
    parser.add_argument("--worker-concurrency", type=int, default=12000)
    parser.add_argument("--redis-maxmemory", default="4gb")
    parser.add_argument("--hold", type=int, default=10000, help="idle streams to hold open (0 skips the hold)")
    parser.add_argument("--hold-clients", type=int, default=2)
    parser.add_argument("--hold-rate", type=int, default=250, help="new idle streams per second")
    parser.add_argument("--hold-settle", type=int, default=30, help="seconds past the ramp to wait for every stream")
    parser.add_argument("--idle-window", type=int, default=30)
    parser.add_argument("--heartbeat-seconds", type=float, default=15)
    parser.add_argument("--monitor-delay", type=float, default=3, help="seconds into each VixAspire run its MONITOR sample starts")
    parser.add_argument("--monitor-seconds", type=float, default=2, help="length of each run's MONITOR sample (it slows Redis)")
    parser.add_argument("--tools-level", type=int, default=100,
                        help="agents of the tool-calling step (bench/tools.mjs) after the table; 0 skips it (default 100)")
    parser.add_argument("--tools-seconds", type=int, default=0, help="length of the tool-calling step (default --seconds)")
    parser.add_argument("--skip-apphost", action="store_true")
    parser.add_argument("--apphost-port", type=int, default=8080)
    parser.add_argument("--apphost-levels", default="1,100")
    parser.add_argument("--overload", type=int, default=3000, help="concurrent streams of the AppHost's overload step")
    parser.add_argument("--overload-seconds", type=int, default=10)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",") if x]
    args.apphost_levels = [int(x) for x in args.apphost_levels.split(",") if x]
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    info = machine()
    info_load[0] = f"{os.getloadavg()[0]:.2f}"
    settings = apphost_settings()
    stack = Stack(args, settings)
    args.api_replicas, args.worker_replicas = stack.api_replicas, stack.worker_replicas
    hb = flatten("", settings.get("Services", {}).get("All", {}), {}).get("Streaming__HeartbeatInterval")
    if hb:
        h, m, s = hb.split(":")
        args.heartbeat_seconds = int(h) * 3600 + int(m) * 60 + float(s)

    log("starting redis-server, the services and the baseline")
    stack.start_redis()
    stack.start_services()
    baseline = start_baseline(args, 1)
    warm_up("baseline", baseline.address)
    warm_up("vix", stack.gateway.address)

    rows = {}
    for level in args.levels:
        seconds = seconds_for(args, level)
        rows[level] = {
            "baseline": measured_run(f"baseline-c{level}", baseline.address, level, seconds, max_tokens=args.tokens),
            "vix": measured_run(f"vix-c{level}", stack.gateway.address, level, seconds, stack=stack, max_tokens=args.tokens,
                                  monitor=(args.monitor_delay, args.monitor_seconds)),
        }
    used = stack.redis.info("memory").get("used_memory_human")
    log(f"table done; Redis holds {used}")
    tools = None
    if args.tools_level > 0:
        log(f"tool-calling streams: {args.tools_level} agents, tools against plain")
        tools = tools_run(args, stack.gateway.address, stack)

    holds = {}
    if args.hold > 0:
        # Fresh processes, so that memory before the hold is not the table's; the workers let a stream wait for its
        # first token longer than the window (synthetic-stall never sends one).
        baseline.stop()
        stack.stop_services()
        long_wait = {"Streaming__FirstTokenTimeout": "00:30:00", "Streaming__MaxDuration": "00:30:00"}
        stack.start_services(worker_extra=long_wait)
        warm_up("vix-hold", stack.gateway.address)
        servers = [("gateway", stack.gateway)] + [(f"streamapi-{i}", p) for i, p in enumerate(stack.apis)]
        port = int(stack.gateway.address.rsplit(":", 1)[1])
        try:
            holds["vix"] = hold("vix", stack.gateway.address, port, args, servers, redis=stack.redis)
            holds["vix"]["dead_after"] = [k for k, p in stack.processes() if not p.alive()]
            holds["vix"]["recovered"] = recovered(stack.gateway.address, "vix")
        except (RuntimeError, OSError) as error:
            holds["vix"] = {"error": str(error)}
        stack.stop_services()
        baseline = start_baseline(args, 2)
        warm_up("baseline-hold", baseline.address)
        port = int(baseline.address.rsplit(":", 1)[1])
        try:
            holds["baseline"] = hold("baseline", baseline.address, port, args, [("baseline", baseline)])
            holds["baseline"]["dead_after"] = [] if baseline.alive() else ["baseline"]
            holds["baseline"]["recovered"] = recovered(baseline.address, "baseline")
        except (RuntimeError, OSError) as error:
            holds["baseline"] = {"error": str(error)}
    stop_all()

    apphost = None
    if not args.skip_apphost:
        log("the AppHost")
        apphost = apphost_section(args, rows)

    elapsed = time.monotonic() - STARTED
    report = render(args, info, rows, holds, apphost, elapsed, tools)
    (OUT / "report.md").write_text(report + "\n")
    (OUT / "results.json").write_text(json.dumps({"rows": rows, "tools": tools, "holds": holds, "apphost": apphost, "machine": info}, indent=1, default=str))
    print(report)


if __name__ == "__main__":
    main()
