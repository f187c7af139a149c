#!/usr/bin/env bash
# Finishes the PostgreSQL image's root ($1): a start script that makes the cluster on first
# start, and pg_isready on PATH for the health check.
set -euo pipefail
root=$1
bin=$(cd "$root" && ls -d usr/lib/postgresql/*/bin | sort | tail -n 1)
cat >"$root/usr/local/bin/start-postgres" <<SCRIPT
#!/bin/sh
set -e
data=/tmp/pgdata
if [ ! -s "\$data/PG_VERSION" ]; then
  /$bin/initdb -D "\$data" -U shop --auth=trust -E UTF8 --no-sync >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "\$data/pg_hba.conf"
fi
exec /$bin/postgres -D "\$data" -c listen_addresses='*' -c fsync=off -k /tmp
SCRIPT
chmod 755 "$root/usr/local/bin/start-postgres"
ln -sf "/$bin/pg_isready" "$root/usr/local/bin/pg_isready"
