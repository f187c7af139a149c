#!/usr/bin/env bash
# The demo's PostgreSQL image: Debian's postgresql on a debootstrap root
# (docker/debian-image.sh). The container makes its cluster on first start (user `shop`,
# trust authentication on the compose network: the demo's database holds nothing worth a
# password).
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/debian-image.sh "${1:-switchboard-demo-postgres:bookworm}" postgresql docker/postgres-root.sh \
  --change 'USER postgres' \
  --change 'EXPOSE 5432' \
  --change 'CMD ["/usr/local/bin/start-postgres"]'
