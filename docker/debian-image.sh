#!/usr/bin/env bash
# Builds a demo image from Debian's packages (no registry here): a minbase root made with
# debootstrap plus PACKAGES, then SETUP (a script given the root's path, or "-" for none),
# imported with `docker import` and the --change options that follow. Cached by tag: an
# existing image is kept.
#   bash docker/debian-image.sh TAG PACKAGES SETUP [--change 'USER x' ...]
set -euo pipefail
tag=$1 packages=$2 setup=$3
shift 3
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
echo "building $tag with debootstrap (a minute or two)" >&2
as_root debootstrap --variant=minbase --include="$packages" bookworm "$root" http://deb.debian.org/debian >/dev/null
as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if [ "$setup" != - ]; then as_root bash "$setup" "$root"; fi
as_root tar -C "$root" -c . | docker import "$@" - "$tag" >/dev/null
