#!/usr/bin/env bash
# The performance table: builds Release, then bench/perf.py runs VixAspire (redis-server, 2 StreamApi, 2 Worker and
# the gateway as plain processes, configured as the AppHost configures them) against a one-process baseline streamer
# (bench/Baseline) at 1, 100 and 1,000 concurrent streams, runs 100 tool-calling agents against plain ones on the same
# stack (bench/tools.mjs, needs node; --tools-level 0 skips it), holds 10,000 idle streams, and measures the AppHost
# (as ./run.sh starts it) at 1 and 100 streams and under overload. Prints a markdown report; see docs/benchmarks.md.
#
# Usage: bench/perf.sh [--skip-apphost] [--hold N] [--levels 1,100,1000] [--seconds 20] [--tools-level 100] [--apphost-port 8080] ...
#        (bench/perf.py --help lists every option)
# Takes about 10 minutes on 2 cores (the build included). Every process it starts is stopped when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

for tool in python3 redis-server ss dotnet; do
  command -v "$tool" >/dev/null || { echo "perf: $tool is needed" >&2; exit 2; }
done
case " $* " in *" --help "*|*" -h "*) exec python3 bench/perf.py --out /tmp/unused --help ;; esac

out=$(mktemp -d /tmp/vix-perf-XXXX)
# perf.py stops what it started; should it die without doing so, the process groups it recorded are ended here.
cleanup() {
  [ -f "$out/pids" ] || return 0
  while read -r pid; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$out/pids"
}
trap cleanup EXIT

started=$(date +%s)
echo "perf: building Release; output in $out" >&2
# The AppHost builds every service and the load tool; the tests are not needed here.
for project in src/AppHost/AppHost.csproj bench/Baseline/Baseline.csproj; do
  dotnet build "$project" -c Release -nologo -v quiet >>"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
done
echo "perf: built in $(( $(date +%s) - started )) s" >&2
# A deadline over everything: perf.py's own deadlines should end it well before.
timeout --signal=TERM --kill-after=60 1500 python3 bench/perf.py --out "$out" "$@"
echo "perf: $(( $(date +%s) - started )) s in all, build included" >&2
