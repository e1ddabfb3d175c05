#!/usr/bin/env bash
# Starts VixAspire: Redis, StreamApi, Worker and the gateway (http://localhost:8080), with the Aspire dashboard.
# Installs redis-server first when neither it nor a container runtime is available.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

if ! command -v redis-server >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  echo "run.sh: installing redis-server (no container runtime answers)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server >/dev/null
fi

exec dotnet run --project src/AppHost --launch-profile http -- "$@"
