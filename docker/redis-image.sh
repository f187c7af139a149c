#!/usr/bin/env bash
# The demo's Redis image: Debian's redis-server on a debootstrap root (docker/debian-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/debian-image.sh "${1:-switchboard-demo-redis:bookworm}" redis-server - \
  --change 'USER redis' \
  --change 'EXPOSE 6379' \
  --change 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]'
