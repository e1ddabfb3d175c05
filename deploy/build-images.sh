#!/usr/bin/env bash
# Builds the VixAspire images into rootful podman on a Debian 12 machine with the .NET SDK:
#   localhost/vixaspire/{gateway,streamapi,worker,loadtest}:latest  (dotnet publish /t:PublishContainer)
#   localhost/vixaspire/redis:latest                                  (Debian's redis-server)
# on a base image made here (debootstrap + the local .NET runtime), since no registry can be pulled from.
#
# Idempotent: packages, containers.conf, root filesystems (tarballs under $VIXASPIRE_CACHE), imported
# images and service images are each skipped when already current. Service images carry a label with a
# hash of their sources and are rebuilt only when it changes (FORCE=1 rebuilds them anyway).
#
# Environment: VIXASPIRE_CACHE (default ~/.cache/vixaspire-deploy), REGISTRY_PORT (5055, loopback only),
# DEBIAN_MIRROR / DEBIAN_SUITE (default: the apt source of this machine, bookworm), FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${VIXASPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vixaspire-deploy}
REGISTRY_PORT=${REGISTRY_PORT:-5055}
REGISTRY=127.0.0.1:$REGISTRY_PORT
SUITE=${DEBIAN_SUITE:-bookworm}
SERVICES=(gateway streamapi worker loadtest)
declare -A PROJECTS=([gateway]=src/Gateway/Gateway.csproj [streamapi]=src/StreamApi/StreamApi.csproj
                     [worker]=src/Worker/Worker.csproj [loadtest]=src/LoadTest/LoadTest.csproj)
mkdir -p "$CACHE"

TIMINGS=()
step() {
  local name=$1 start
  shift
  start=$(date +%s%N)
  echo "==> $name"
  "$@"
  TIMINGS+=("$(awk -v name="$name" -v ns=$(( $(date +%s%N) - start )) 'BEGIN {printf "%-28s %7.1f s", name, ns / 1e9}')")
}

# The Debian mirror apt already uses (a snapshot-pinned one keeps image contents reproducible).
debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
           grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } \
         | grep -E '/debian/?$' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=$(debian_mirror)

install_packages() {
  local needed=() pkg
  # command -> package
  local -A wanted=([podman]=podman [runc]=runc [netavark]=netavark [aardvark-dns]=aardvark-dns
                   [debootstrap]=debootstrap [docker-registry]=docker-registry [podman-compose]=podman-compose
                   [curl]=curl [iptables]=iptables)
  for pkg in "${!wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "${wanted[$pkg]}" 2>/dev/null | grep -q 'ok installed'; then
      needed+=("${wanted[$pkg]}")
    fi
  done
  if ((${#needed[@]})); then
    echo "installing ${needed[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
  fi
  # The package starts no registry here (no systemd), and we run our own on loopback when needed.
}

# Without these limits the runtime refuses to start containers on this kind of machine
# ("error setting rlimit type 6/7: operation not permitted"); crun fails the same way as runc.
write_containers_conf() {
  local conf=/etc/containers/containers.conf wanted
  wanted=$'[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nnetwork_backend = "netavark"'
  if [[ ! -f $conf || "$(cat "$conf")" != "$wanted" ]]; then
    mkdir -p /etc/containers
    printf '%s\n' "$wanted" >"$conf"
    echo "wrote $conf"
  fi
}

# debootstrap SUITE into a temporary folder, let $2 adjust it, and keep the result as a tarball.
make_rootfs() {
  local tarball=$1 customize=$2 include=$3 dir
  if [[ -f $tarball ]]; then echo "cached: $tarball"; return; fi
  dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  mkdir -p "$CACHE/debs"
  debootstrap --variant=minbase --include="$include" --cache-dir="$CACHE/debs" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 \
    || { tail -20 "$dir.log"; rm -rf "$dir"; return 1; }
  "$customize" "$dir"
  trim_rootfs "$dir"
  tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir" "$dir.log"
  # Drop the tarballs this one replaces (same name, older key).
  find "$CACHE" -maxdepth 1 -name "$(basename "${tarball%-*}")-*.tar" -not -name "$(basename "$tarball")" -delete
}

# Nothing a service reads at run time: package caches, manuals, translations (licences stay).
trim_rootfs() {
  local dir=$1
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/tmp/* \
    "$dir"/usr/share/man "$dir"/usr/share/info "$dir"/usr/share/locale "$dir"/usr/share/lintian
  find "$dir/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
}

DOTNET_ROOT_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
DOTNET_RUNTIME=$(dotnet --list-runtimes | awk '$1 == "Microsoft.AspNetCore.App" {print $2}' | sort -V | tail -1)
DOTNET_MAJOR_MINOR=${DOTNET_RUNTIME%.*}

# `http-health PATH [PORT]`: a probe for compose health checks that needs no curl, only bash's /dev/tcp.
http_health_script() {
  cat <<'SCRIPT'
#!/bin/bash
# Exits 0 when GET http://127.0.0.1:${2:-8080}${1:-/health} answers 200 within 3 seconds.
exec 3<>"/dev/tcp/127.0.0.1/${2:-8080}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${1:-/health}" >&3
read -r -t 3 _ status _ <&3 && [[ $status == 200 ]]
SCRIPT
}

customize_dotnet() {
  local dir=$1
  # The same shared frameworks the SDK here runs on (framework-dependent apps need only these).
  mkdir -p "$dir/usr/share/dotnet/shared" "$dir/usr/share/dotnet/host/fxr"
  cp -a "$DOTNET_ROOT_DIR/dotnet" "$DOTNET_ROOT_DIR/LICENSE.txt" "$dir/usr/share/dotnet/"
  cp -a "$DOTNET_ROOT_DIR/host/fxr/$DOTNET_RUNTIME" "$dir/usr/share/dotnet/host/fxr/"
  for fx in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
    mkdir -p "$dir/usr/share/dotnet/shared/$fx"
    cp -a "$DOTNET_ROOT_DIR/shared/$fx/$DOTNET_RUNTIME" "$dir/usr/share/dotnet/shared/$fx/"
  done
  ln -sf /usr/share/dotnet/dotnet "$dir/usr/bin/dotnet"
  # The non-root user of Microsoft's .NET images (APP_UID 1654), so images behave alike.
  echo 'app:x:1654:1654:app:/home/app:/usr/sbin/nologin' >>"$dir/etc/passwd"
  echo 'app:x:1654:' >>"$dir/etc/group"
  mkdir -p "$dir/home/app" "$dir/app" && chown 1654:1654 "$dir/home/app"
  http_health_script >"$dir/usr/local/bin/http-health"
  chmod 755 "$dir/usr/local/bin/http-health"
}

redis_entrypoint_script() {
  cat <<'SCRIPT'
#!/bin/sh
# Redis configured from the environment only. The password goes in through stdin, not the command line.
set -eu
: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
exec redis-server - "$@" <<CONF
bind 0.0.0.0 -::*
port 6379
requirepass "$REDIS_PASSWORD"
maxmemory ${REDIS_MAXMEMORY:-256mb}
maxmemory-policy ${REDIS_MAXMEMORY_POLICY:-noeviction}
save ""
appendonly no
dir /data
CONF
SCRIPT
}

customize_redis() {
  local dir=$1
  mkdir -p "$dir/data"
  chown "$(awk -F: '$1 == "redis" {print $3":"$4}' "$dir/etc/passwd")" "$dir/data"
  redis_entrypoint_script >"$dir/usr/local/bin/redis-entrypoint"
  chmod 755 "$dir/usr/local/bin/redis-entrypoint"
}

# A root filesystem is rebuilt when what goes into it changes: mirror, suite, runtime, or the steps above.
BASE_KEY=$(printf '%s\n' v1 "$MIRROR" "$SUITE" "$DOTNET_RUNTIME" "$(declare -f make_rootfs trim_rootfs customize_dotnet http_health_script)" | sha256sum | cut -c1-12)
REDIS_KEY=$(printf '%s\n' v1 "$MIRROR" "$SUITE" "$(declare -f make_rootfs trim_rootfs customize_redis redis_entrypoint_script)" | sha256sum | cut -c1-12)

image_label() { podman image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null || true; }

import_base() {
  local tag=localhost/vixaspire/dotnet-base:$DOTNET_MAJOR_MINOR
  if [[ $(image_label "$tag" org.vixaspire.rootfs) == "$BASE_KEY" ]]; then echo "current: $tag"; return; fi
  podman import -q \
    --change "LABEL org.vixaspire.rootfs=$BASE_KEY" \
    --change "ENV APP_UID=1654" \
    --change "ENV DOTNET_RUNNING_IN_CONTAINER=true" \
    --change "ENV ASPNETCORE_HTTP_PORTS=8080" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "USER 1654" \
    --change "WORKDIR /app" \
    "$CACHE/dotnet-base-$BASE_KEY.tar" "$tag" >/dev/null
  echo "imported $tag"
}

import_redis() {
  local tag=localhost/vixaspire/redis:latest uid
  if [[ $(image_label "$tag" org.vixaspire.rootfs) == "$REDIS_KEY" ]]; then echo "current: $tag"; return; fi
  uid=$(tar -xOf "$CACHE/redis-$REDIS_KEY.tar" ./etc/passwd | awk -F: '$1 == "redis" {print $3}')
  podman import -q \
    --change "LABEL org.vixaspire.rootfs=$REDIS_KEY" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "USER $uid" \
    --change "WORKDIR /data" \
    --change "EXPOSE 6379/tcp" \
    --change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]' \
    "$CACHE/redis-$REDIS_KEY.tar" "$tag" >/dev/null
  echo "imported $tag (user $uid)"
}

# Everything a service image is built from; unchanged sources skip dotnet publish on the next run.
source_hash() {
  {
    printf '%s\n' "$BASE_KEY"
    find src deploy/Container.props Directory.Build.props Directory.Packages.props global.json \
      -type f -not -path '*/bin/*' -not -path '*/obj/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-12
}

REGISTRY_PID=
stop_registry() { if [[ -n $REGISTRY_PID ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; REGISTRY_PID=; fi; }
trap stop_registry EXIT

# The SDK takes its base image from a registry, so serve ours from a loopback registry while publishing.
start_registry() {
  local config=$CACHE/registry.yml
  cat >"$config" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $CACHE/registry}}
http: {addr: $REGISTRY}
EOF
  docker-registry serve "$config" >"$CACHE/registry.log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 50); do
    curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://$REGISTRY/v2/" >/dev/null || { cat "$CACHE/registry.log"; return 1; }
  podman push -q --tls-verify=false "localhost/vixaspire/dotnet-base:$DOTNET_MAJOR_MINOR" \
    "$REGISTRY/vixaspire/dotnet-base:$DOTNET_MAJOR_MINOR"
}

publish_service() {
  local name=$1 hash=$2
  DOTNET_CONTAINER_INSECURE_REGISTRIES=$REGISTRY dotnet publish "${PROJECTS[$name]}" -c Release \
    -r linux-x64 --self-contained false -nologo -v quiet /t:PublishContainer \
    -p:ContainerBaseImage="$REGISTRY/vixaspire/dotnet-base:$DOTNET_MAJOR_MINOR" \
    -p:LocalRegistry=Podman -p:VixSourceHash="$hash" | grep -v '^\s*$' || true
  [[ $(image_label "localhost/vixaspire/$name:latest" org.vixaspire.source) == "$hash" ]] \
    || { echo "publish of $name did not produce localhost/vixaspire/$name:latest" >&2; return 1; }
}

build_services() {
  local hash name stale=()
  hash=$(source_hash)
  for name in "${SERVICES[@]}"; do
    if [[ ${FORCE:-0} == 1 || $(image_label "localhost/vixaspire/$name:latest" org.vixaspire.source) != "$hash" ]]; then
      stale+=("$name")
    fi
  done
  if ((${#stale[@]} == 0)); then echo "current: ${SERVICES[*]} (sources $hash)"; return; fi
  step "registry + push base" start_registry
  for name in "${stale[@]}"; do
    step "publish $name" publish_service "$name" "$hash"
  done
  stop_registry
}

total_start=$(date +%s%N)
step "packages" install_packages
step "containers.conf" write_containers_conf
step "rootfs dotnet-base" make_rootfs "$CACHE/dotnet-base-$BASE_KEY.tar" customize_dotnet ca-certificates,libicu72,libssl3,tzdata
step "rootfs redis" make_rootfs "$CACHE/redis-$REDIS_KEY.tar" customize_redis redis-server
step "import dotnet-base" import_base
step "import redis" import_redis
build_services
# Images replaced by this run (untagged now) carry our rootfs label; nothing else is pruned.
podman image prune -f --filter label=org.vixaspire.rootfs >/dev/null

echo
echo "step                          time"
printf '%s\n' "${TIMINGS[@]}"
awk -v ns=$(( $(date +%s%N) - total_start )) 'BEGIN {printf "%-28s %7.1f s\n", "total", ns / 1e9}'
echo
podman images --filter reference='localhost/vixaspire/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
