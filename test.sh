#!/usr/bin/env bash
# Builds the solution (warnings are errors) and runs every test: unit, real redis-server, real Kestrel,
# the real gateway, the JavaScript clients under tests/js, and the AppHost end to end. Installs redis-server and
# chromium first when they are missing, and the JavaScript clients (npm ci) when tests/js/node_modules is.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

# redis-server for the services' tests; chromium for the demo page's browser tests (Playwright drives Debian's).
if ! command -v redis-server >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing redis-server and chromium"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server chromium >/dev/null
fi

# The JavaScript clients the integration tests run with the machine's Node.js: tests/js, pinned by its lock file,
# installed when missing or older than the lock file (CI's fresh clone included).
if ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: installing Node.js and npm"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f tests/js/node_modules/.package-lock.json ] || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
  echo "test.sh: installing the JavaScript clients (npm ci in tests/js)"
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

configuration="${CONFIGURATION:-Release}"
dotnet build VixAspire.sln -c "$configuration" -nologo -v quiet
log=$(mktemp)
status=0
dotnet test VixAspire.sln -c "$configuration" --no-build -nologo "$@" 2>&1 | tee "$log" || status=$?

# One closing line for people and CI: the sums of every test project's result line.
awk '/(Passed|Failed)! +- +Failed:/ {
       for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1)); if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) }
     } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
