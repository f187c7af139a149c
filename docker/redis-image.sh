#!/usr/bin/env bash
# Builds the demo's Redis image from Debian's packages (no registry here): a minbase root made
# with debootstrap plus redis-server, imported with `docker import`. Cached by tag: an existing
# image is kept.
set -euo pipefail
tag=${1:-switchboard-demo-redis:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v debootstrap >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
root=$(mktemp -d)
trap 'as_root rm -rf "$root"' EXIT
echo "building $tag with debootstrap (about a minute)" >&2
as_root debootstrap --variant=minbase --include=redis-server bookworm "$root" http://deb.debian.org/debian >/dev/null
as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
as_root tar -C "$root" -c . | docker import \
  --change 'USER redis' \
  --change 'EXPOSE 6379' \
  --change 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]' \
  - "$tag" >/dev/null
