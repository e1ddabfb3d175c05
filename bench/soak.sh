#!/usr/bin/env bash
# Soak: the load tool against the AppHost (Release, its default replicas) for a while, then a report of every
# process's memory and open descriptors, and Redis's memory, at start and at end. Fails when any stream ended
# incomplete or failed, or when a service died.
#
# Usage: bench/soak.sh [--duration 10m] [--concurrency 200] [--max-tokens 64] [--port 18080] [--keep-going]
# The AppHost's dashboard ports are fixed (launch profile): stop ./run.sh before soaking.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

duration=10m concurrency=200 max_tokens=64 port=18080
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
done

out=$(mktemp -d /tmp/vix-soak-XXXX)
echo "soak: building Release; output in $out"
dotnet build VixAspire.sln -c Release -nologo -v quiet >"$out/build.log"

apphost_log="$out/apphost.log"
# One load machine is one client address: lift the per-client stream limit for the run.
Gateway__Port=$port Services__StreamApi__Streaming__MaxConcurrentStreamsPerClient=0 dotnet run --no-build -c Release --project src/AppHost --launch-profile http >"$apphost_log" 2>&1 &
run_pid=$!
apphost_pid=""
stop_apphost() {
  # A background job ignores SIGINT: SIGTERM the AppHost process itself, then wait for its services to go.
  [ -n "$apphost_pid" ] && kill -TERM "$apphost_pid" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
  for _ in $(seq 60); do pgrep -f 'VixAspire\.(StreamApi|Worker|Gateway)' >/dev/null || break; sleep 0.5; done
}
trap stop_apphost EXIT

for _ in $(seq 180); do
  apphost_pid=$(pgrep -f 'bin/Release/net10.0/AppHost' | head -n1 || true)
  curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
  sleep 1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/health" || { echo "soak: the gateway never answered on :$port"; tail -50 "$apphost_log"; exit 1; }

# True when $1 belongs to this AppHost: a service built from this checkout, its redis-server (working folder
# made by the AppHost), or DCP started by it; processes of anything else on the machine are never sampled.
root=$(pwd)
ours() {
  local pid=$1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$root/src/.*/bin/Release/" && return 0
  readlink "/proc/$pid/cwd" 2>/dev/null | grep -q 'vixaspire-redis-' && return 0
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    [ "$pid" = "$apphost_pid" ] && return 0
    pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  done
  return 1
}

# One line per process: name, pid, RSS (KiB), open descriptors; then Redis's used memory.
sample() {
  local label=$1 redis_pid=""
  for pid in $(pgrep -f 'VixAspire\.(StreamApi|Worker|Gateway)|redis-server|/dcp ' || true); do
    [ -r "/proc/$pid/status" ] && ours "$pid" || continue
    local name rss fds
    name=$(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -oE 'VixAspire\.[A-Za-z]+|redis-server|dcp[a-z]*' | head -n1)
    [ "$name" = redis-server ] && redis_pid=$pid
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$name" "$pid" "$rss" "$fds"
  done
  local redis_port=""
  [ -n "$redis_pid" ] && redis_port=$(tr '\0' ' ' <"/proc/$redis_pid/cmdline" | grep -oE -- '--port [0-9]+' | grep -oE '[0-9]+' | head -n1)
  if [ -n "$redis_port" ]; then
    # The AppHost keeps Redis's password in a config file in Redis's working folder, off its command line.
    local conf password=""
    conf="$(readlink "/proc/$redis_pid/cwd")/vixaspire-redis.conf"
    [ -r "$conf" ] && password=$(awk '$1 == "requirepass" {gsub(/"/, "", $2); print $2}' "$conf")
    printf '%s\tredis used_memory\t-\t%s\t-\n' "$label" \
      "$(REDISCLI_AUTH="$password" redis-cli -p "$redis_port" info memory 2>/dev/null | awk -F: '/^used_memory:/ {printf "%d", $2/1024}')"
  fi
}

# Warm up (JIT, pools), then the first sample.
dotnet src/LoadTest/bin/Release/net10.0/VixAspire.LoadTest.dll --url "http://127.0.0.1:$port" --streams 200 --concurrency 20 \
  --max-tokens 16 --no-progress >"$out/warmup.txt" 2>&1
sample start >"$out/samples.tsv"

echo "soak: $duration at concurrency $concurrency, $max_tokens tokens per stream"
# A sample a minute during the run shows whether memory levels off or keeps growing.
( minute=0; while sleep 60; do minute=$((minute + 1)); sample "${minute}m"; done ) >>"$out/samples.tsv" &
sampler=$!
status=0
dotnet src/LoadTest/bin/Release/net10.0/VixAspire.LoadTest.dll --url "http://127.0.0.1:$port" --streams 100000000 \
  --concurrency "$concurrency" --duration "$duration" --max-tokens "$max_tokens" --no-progress --json "$out/report.json" \
  >"$out/load.txt" 2>&1 || status=$?
kill "$sampler" 2>/dev/null || true
sample end >>"$out/samples.tsv"

cat "$out/load.txt"
echo
printf 'when\tprocess\tpid\tRSS KiB\tfds\n'
{ grep -E '^(start|end)\b' "$out/samples.tsv" || true; } | sort -k2,2 -k3,3 -s
echo "(every minute's sample: $out/samples.tsv)"

py_status=0
python3 - "$out/report.json" "$out/samples.tsv" <<'EOF' || py_status=$?
import json, sys
report = json.load(open(sys.argv[1]))
s = report["streams"]
print(f"\nsoak: {s['started']} streams started, {s['completed']} complete, {s['failed']} failed ({s['incomplete']} incomplete), "
      f"{report['tokens_per_second']:.0f} tokens/s")
start = {}; end = {}
for line in open(sys.argv[2]):
    when, name, pid, rss, fds = line.rstrip("\n").split("\t")
    if when in ("start", "end"):
        (start if when == "start" else end)[(name, pid)] = (rss, fds)
died = [k for k in start if k not in end and k[0] != "redis used_memory"]
for k in died:
    print(f"soak: {k[0]} (pid {k[1]}) died during the run")
bad = s["failed"] > 0 or s["completed"] != s["started"] or died
sys.exit(1 if bad else 0)
EOF
[ "$status" -eq 0 ] && [ "$py_status" -eq 0 ] && echo "soak: PASS" || { echo "soak: FAIL"; exit 1; }
