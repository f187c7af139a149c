#!/usr/bin/env bash
# Builds the demo's PostgreSQL image from Debian's packages (no registry here): a minbase root
# made with debootstrap plus postgresql, imported with `docker import`. The container makes
# its cluster on first start (user `shop`, trust authentication on the compose network: the
# demo's database holds nothing worth a password). Cached by tag: an existing image is kept.
set -euo pipefail
tag=${1:-switchboard-demo-postgres:bookworm}
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
echo "building $tag with debootstrap (about two minutes)" >&2
as_root debootstrap --variant=minbase --include=postgresql bookworm "$root" http://deb.debian.org/debian >/dev/null
as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
bin=$(cd "$root" && ls -d usr/lib/postgresql/*/bin | sort | tail -n 1)
as_root tee "$root/usr/local/bin/start-postgres" >/dev/null <<SCRIPT
#!/bin/sh
set -e
data=/tmp/pgdata
if [ ! -s "\$data/PG_VERSION" ]; then
  /$bin/initdb -D "\$data" -U shop --auth=trust -E UTF8 --no-sync >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "\$data/pg_hba.conf"
fi
exec /$bin/postgres -D "\$data" -c listen_addresses='*' -c fsync=off -k /tmp
SCRIPT
as_root chmod 755 "$root/usr/local/bin/start-postgres"
as_root ln -sf "/$bin/pg_isready" "$root/usr/local/bin/pg_isready"
as_root tar -C "$root" -c . | docker import \
  --change 'USER postgres' \
  --change 'EXPOSE 5432' \
  --change 'CMD ["/usr/local/bin/start-postgres"]' \
  - "$tag" >/dev/null
