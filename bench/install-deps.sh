#!/usr/bin/env bash
# Installs what `make bench` needs beyond scripts/install-deps.sh: the Redis
# Streams peer (redis-server, and libhiredis-dev for bench/redis_bench) and
# matplotlib for the latency picture. Idempotent: installs only what is
# missing, and runs `apt-get update` only then.
set -euo pipefail

packages=(redis-server libhiredis-dev python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bench/install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's package starts a system-wide redis-server on 6379 where systemd
# runs; the bench starts its own on a free port and does not use that one.
