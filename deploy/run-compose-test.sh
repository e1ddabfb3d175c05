#!/usr/bin/env bash
# Runs the containers for real: builds the images (deploy/build-images.sh), starts deploy/compose.yaml with
# podman-compose, waits until every container's health check passes, streams through the containerised
# gateway (full stream, resume with Last-Event-ID, cancel, and a StreamApi replica killed mid-stream),
# runs the load-test image against it, and removes everything it started. Exit code 0 when all passed.
#
# Environment: GATEWAY_PORT (host port of the gateway, 18088), KEEP=1 leaves the stack running.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=vixaspire-test
export GATEWAY_PORT=${GATEWAY_PORT:-18088}
# Hex only: the password goes into a StackExchange.Redis connection string, where ',' and '=' are syntax.
REDIS_PASSWORD=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
export REDIS_PASSWORD
COMPOSE=(podman-compose -f deploy/compose.yaml -p "$PROJECT")
SERVERS=(redis streamapi worker gateway)

TIMINGS=()
step() {
  local name=$1 start
  shift
  start=$(date +%s%N)
  echo "==> $name"
  "$@"
  TIMINGS+=("$(awk -v name="$name" -v ns=$(( $(date +%s%N) - start )) 'BEGIN {printf "%-22s %7.1f s", name, ns / 1e9}')")
}

project_containers() { podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'; }

remove_stack() {
  local containers
  containers=$(project_containers)
  if [[ -n $containers ]]; then
    # shellcheck disable=SC2086 # one name per word
    podman rm -f -t 5 $containers >/dev/null 2>&1 || true
  fi
  podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
}

cleanup() {
  local status=$?
  if ((status != 0)); then
    for container in $(project_containers); do
      echo "--- last log lines of $container"
      podman logs --tail 15 "$container" 2>&1 || true
    done
  fi
  if [[ ${KEEP:-0} != 1 ]]; then remove_stack; fi
}

# podman runs health checks from systemd timers, which this kind of machine lacks: run them ourselves.
wait_healthy() {
  local deadline=$((SECONDS + 120)) pending
  while :; do
    pending=()
    for container in $(project_containers); do
      podman healthcheck run "$container" >/dev/null 2>&1 || pending+=("$container")
    done
    ((${#pending[@]} == 0)) && break
    if ((SECONDS > deadline)); then echo "not healthy after 120 s: ${pending[*]}" >&2; return 1; fi
    sleep 1
  done
  echo "healthy: $(project_containers | tr '\n' ' ')"
}

compose_up() {
  # podman-compose 1.0 ignores profiles: name the servers so the load test does not start with them.
  "${COMPOSE[@]}" up -d "${SERVERS[@]}" >"${TMPDIR:-/tmp}/$PROJECT-up.log" 2>&1 \
    || { cat "${TMPDIR:-/tmp}/$PROJECT-up.log"; return 1; }
  [[ $(project_containers | wc -l) == 6 ]] || { echo "expected 6 containers:"; project_containers; return 1; }
}

load_test() {
  "${COMPOSE[@]}" run --rm --no-deps loadtest --streams 100 --concurrency 20 --no-progress 2>&1 \
    | grep -v -e "^\['podman'" -e '^podman ' -e '^exit code' -e '^using podman' -e 'not a TTY' -e '^[0-9a-f]\{64\}$'
  return "${PIPESTATUS[0]}"
}

trap cleanup EXIT
total_start=$(date +%s%N)
step "build images" ./deploy/build-images.sh
remove_stack
step "compose up" compose_up
step "healthy" wait_healthy
step "stream checks" python3 deploy/stream-check.py "http://127.0.0.1:$GATEWAY_PORT" "$PROJECT"
step "load test (100)" load_test
if [[ ${KEEP:-0} != 1 ]]; then step "compose down" remove_stack; fi

echo
printf '%s\n' "${TIMINGS[@]}"
awk -v ns=$(( $(date +%s%N) - total_start )) 'BEGIN {printf "%-22s %7.1f s\n", "total", ns / 1e9}'
