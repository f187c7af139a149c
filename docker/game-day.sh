#!/usr/bin/env bash
# The game-day demo in one command: builds the demo images, starts the shop behind
# Switchboard with docker-compose, runs rules/drills/orders-db-outage.ron against it with
# `switchboard drill`, prints the report and tears everything down. The report stays in
# $REPORT_DIR (default drill-reports/orders-db-outage): report.json, report.md, report.svg.
# Extra arguments go to `switchboard drill` (e.g. --compare old/report.json, --on-server).
# Exits with the drill's code: 0 when every hypothesis held, 1 when one failed, 2 when the
# drill was refused or rolled back, 3 when --compare found a regression.
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
report_dir=${REPORT_DIR:-drill-reports/orders-db-outage}
# The static binary build-images.sh just built runs on the host too.
target/x86_64-unknown-linux-gnu/release/switchboard drill rules/drills/orders-db-outage.ron \
  --url "$control" --report "$report_dir" "$@"
