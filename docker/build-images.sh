#!/usr/bin/env bash
# Builds every image the demo needs, from what the project builds and Debian's packages:
#   switchboard:local, switchboard-demo-shop:local, switchboard-demo-inventory:local,
#   switchboard-demo-region:local (scratch)
#   switchboard-demo-redis:bookworm, switchboard-demo-postgres:bookworm,
#   switchboard-demo-dnsmasq:bookworm (debootstrap; cached)
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# glibc, linked statically: the binaries run on scratch. --target keeps build scripts and
# proc macros dynamic, which they must be.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" \
  --bin switchboard --example shop --example inventory --example region
context=target/docker-context
rm -rf "$context" && mkdir -p "$context"
cp "target/$target/release/switchboard" "target/$target/release/examples/shop" \
  "target/$target/release/examples/inventory" "target/$target/release/examples/region" "$context/"
# The legacy builder warns about itself on every build; show its output only on failure.
build() { local out; out=$(docker build -q --label switchboard.demo=1 "$@" 2>&1) || { echo "$out" >&2; return 1; }; }
build -f docker/Dockerfile -t switchboard:local "$context"
for service in shop inventory region; do
  build -f docker/Dockerfile.demo --build-arg BIN="$service" -t "switchboard-demo-$service:local" "$context"
done
# A rebuild leaves the previous image of a tag untagged; drop those, keep the tags.
docker image prune -f --filter label=switchboard.demo=1 >/dev/null
bash docker/redis-image.sh switchboard-demo-redis:bookworm
bash docker/postgres-image.sh switchboard-demo-postgres:bookworm
bash docker/dnsmasq-image.sh switchboard-demo-dnsmasq:bookworm
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^switchboard' >&2
