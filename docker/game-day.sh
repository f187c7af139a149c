#!/usr/bin/env bash
# The game-day demo in one command: builds the demo images, starts the shop behind
# Switchboard with docker-compose, runs the demo drills against it one after the other with
# `switchboard drill` (rules/shop/drills/orders-db-outage.ron: the inventory partitioned;
# rules/shop/drills/db-failover-read-only.ron: the orders database read-only), prints each report
# and tears everything down. $DRILLS picks drills by name. Each report stays in
# $REPORT_ROOT/<drill> (default drill-reports/<drill>): report.json, report.md, report.svg.
# Extra arguments go to `switchboard drill` (e.g. --on-server). Exits with the first drill
# code that is not 0: 1 when a hypothesis failed, 2 when the drill was refused or rolled
# back, 3 when --compare found a regression.
set -euo pipefail
cd "$(dirname "$0")/.."

bash docker/build-images.sh

project="sbgameday$$"
script_name="game day"
# shellcheck source=docker/lib.sh
. docker/lib.sh
compose_up

export SHOP_URL="http://$(host_port shop 8080)"
control="http://$(host_port switchboard 8474)"
# The static binary build-images.sh just built runs on the host too.
for drill in ${DRILLS:-orders-db-outage db-failover-read-only}; do
  target/x86_64-unknown-linux-gnu/release/switchboard drill "rules/shop/drills/$drill.ron" \
    --url "$control" --report "${REPORT_ROOT:-drill-reports}/$drill" "$@"
done
