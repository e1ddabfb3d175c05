#!/usr/bin/env bash
# Redis round trips and Redis CPU per token written by the worker alone: N synthetic requests are queued straight
# into a fresh redis-server (as the API would), one Release worker runs them all, and INFO commandstats / INFO cpu
# are compared before and after. Round trips are commands clients sent: EVAL/EVALSHA count once, the commands
# run inside the scripts do not (they are listed apart). Workers built before the group commit also sent one EXISTS
# per generation of their own: count it with --exists-sent. With --counters, dotnet-counters samples the worker
# (allocations, CPU, group-commit histograms).
#
# Usage: bench/worker_redis_calls.sh [--streams 1000] [--tokens 32] [--token-delay 00:00:00.020]
#          [--worker-dll src/Worker/bin/Release/net10.0/VixAspire.Worker.dll] [--counters] [--exists-sent]
set -euo pipefail
cd "$(dirname "$0")/.."

streams=1000 tokens=32 delay=00:00:00.020 dll=src/Worker/bin/Release/net10.0/VixAspire.Worker.dll counters="" exists_sent=0
while [ $# -gt 0 ]; do
  case "$1" in
    --streams) streams=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --token-delay) delay=$2; shift 2 ;;
    --worker-dll) dll=$2; shift 2 ;;
    --counters) counters=1; shift ;;
    --exists-sent) exists_sent=1; shift ;;
    *) echo "worker_redis_calls: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$dll" ] || { echo "worker_redis_calls: $dll not built (dotnet build -c Release)" >&2; exit 1; }

out=$(mktemp -d /tmp/vix-rediscalls-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$out" >"$out/redis.log" 2>&1 &
redis_pid=$!
worker_pid="" counters_pid=""
cleanup() {
  [ -n "$counters_pid" ] && kill "$counters_pid" 2>/dev/null || true
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT
r() { redis-cli -p "$port" "$@"; }
for _ in $(seq 50); do r PING >/dev/null 2>&1 && break; sleep 0.1; done

# Each request: its token stream with the start entry, then its queue entry (fields as the API writes them).
r EVAL "
for i = 1, tonumber(ARGV[1]) do
  local id = string.format('bench%08d', i)
  local tokens = 'vix:{' .. id .. '}:tokens'
  redis.call('XADD', tokens, '*', 'e', 'start', 'd', '{\"id\":\"' .. id .. '\",\"model\":\"synthetic\"}')
  redis.call('PEXPIRE', tokens, 900000)
  redis.call('XADD', 'vix:requests', '*', 'id', id,
    'body', '{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"bench ' .. i .. '\"}],\"max_tokens\":' .. ARGV[2] .. '}')
end
return 1" 0 "$streams" "$tokens" >/dev/null

stats() { r INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\).*/\1 \2/p' | sort; }
cpu() { r INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.3f", s }'; }
stats >"$out/before"
cpu_before=$(cpu)

start=$(date +%s.%N)
ConnectionStrings__redis="127.0.0.1:$port" ASPNETCORE_URLS="http://127.0.0.1:0" DOTNET_gcServer=1 \
  Logging__LogLevel__Default=Warning \
  Providers__Synthetic__FirstTokenDelay=00:00:00 Providers__Synthetic__TokenDelay="$delay" \
  Worker__MaxConcurrency=$((streams > 256 ? streams : 256)) \
  dotnet "$dll" >"$out/worker.log" 2>&1 &
worker_pid=$!
if [ -n "$counters" ]; then
  sleep 1
  "$(command -v dotnet-counters || echo "$HOME/.dotnet/tools/dotnet-counters")" collect -p "$worker_pid" --format csv -o "$out/counters.csv" --refresh-interval 1 \
    --counters System.Runtime,VixAspire.Worker >/dev/null 2>&1 &
  counters_pid=$!
fi

# The worker deletes each queue entry once its stream has ended: wait for the queue to empty.
for _ in $(seq 1200); do
  [ "$(r XLEN vix:requests)" = "0" ] && break
  kill -0 "$worker_pid" 2>/dev/null || { echo "worker died:"; tail -30 "$out/worker.log"; exit 1; }
  sleep 0.1
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
stats >"$out/after"
cpu_after=$(cpu)
[ -n "$counters_pid" ] && { sleep 1; kill -TERM "$counters_pid" 2>/dev/null || true; wait "$counters_pid" 2>/dev/null || true; counters_pid=""; }

delivered=$(r EVAL "
local n = 0
for i = 1, tonumber(ARGV[1]) do
  n = n + redis.call('XLEN', string.format('vix:{bench%08d}:tokens', i)) - 2
end
return n" 0 "$streams")

# Commands the scripts run inside (not round trips); XLEN and INFO are this script's own.
inside="xadd xrevrange hset hget pexpire exists publish time zcount get zrevrangebyscore set pttl xclaim xpending"
join -a 2 -e 0 -o 2.1,1.2,2.2 "$out/before" "$out/after" | awk -v inside="$inside" -v extra=$((exists_sent * streams)) -v tokens="$delivered" '
  BEGIN { n = split(inside, list, " "); for (i = 1; i <= n; i++) isInside[list[i]] = 1 }
  $1 == "xlen" || $1 == "info" { next }
  { d = $3 - $2; if (d == 0) next
    if (isInside[$1]) { within += d; printf "  %-18s %9d  (inside scripts)\n", $1, d }
    else { sent += d; printf "  %-18s %9d\n", $1, d } }
  END {
    sent += extra; within -= extra
    printf "tokens delivered: %d\nround trips (commands sent): %d = %.4f per token\ncommands run inside scripts: %d = %.3f per token\n", \
      tokens, sent, sent / tokens, within, within / tokens }'
echo "redis cpu: $(echo "$cpu_after - $cpu_before" | bc) s = $(echo "scale=3; ($cpu_after - $cpu_before) * 1000000 / $delivered" | bc) us per token"
echo "wall: ${elapsed}s (worker start to queue empty); $(echo "scale=0; $delivered / $elapsed" | bc) tokens/s"
if [ -n "$counters" ]; then
  # Per-second rates summed over the run (sampling starts a second after the worker, so most of its start-up is left out).
  awk -F, -v tokens="$delivered" '
    $3 ~ /^dotnet.gc.heap.total_allocated/ { bytes += $5 }
    $3 ~ /^dotnet.process.cpu.time/ { cpu += $5 }
    END { printf "worker: %.0f bytes allocated per token, %.1f us CPU per token\n", bytes / tokens, cpu * 1000000 / tokens }' "$out/counters.csv"
  echo "counters: $out/counters.csv"
fi
echo "output in $out"
