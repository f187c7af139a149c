#!/usr/bin/env bash
# The fleet demo in one command: the shop with a Switchboard sidecar per dependency
# (docker/fleet.yaml), steered as one. `ctl --targets` shows the three sidecars' status in one
# table; rules/fleet/drills/orders-and-catalog.ron partitions the inventory on its sidecar
# while slowing the catalog's cache on another, and must hold its plan; the report (which
# gives every fault and route probe its target) stays in $REPORT_ROOT/orders-and-catalog
# (default drill-reports/orders-and-catalog). Then a fleet-wide reset with one sidecar
# stopped must name it, exit non-zero, and still reset the other two. Exits non-zero when
# the drill or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash docker/build-images.sh

project="sbfleet$$"
script_name="fleet"
compose_file=docker/fleet.yaml
services="redis postgres inventory cache-switchboard inventory-switchboard orders-db-switchboard shop"
# shellcheck source=docker/lib.sh
. docker/lib.sh
compose_up

switchboard=target/x86_64-unknown-linux-gnu/release/switchboard
export SHOP_URL="http://$(host_port shop 8080)"
export CACHE_SB="http://$(host_port cache-switchboard 8474)"
export INVENTORY_SB="http://$(host_port inventory-switchboard 8474)"
export ORDERS_DB_SB="http://$(host_port orders-db-switchboard 8474)"
fleet="$CACHE_SB,$INVENTORY_SB,$ORDERS_DB_SB"

echo "the fleet:"
"$switchboard" ctl --targets "$fleet" status

report="${REPORT_ROOT:-drill-reports}/orders-and-catalog"
code=0
"$switchboard" drill rules/fleet/drills/orders-and-catalog.ron --url "$CACHE_SB" \
  --report "$report" "$@" || code=$?
[ "$code" -eq 0 ] || fail "the drill exited $code"
python3 - "$report/report.json" <<'PY' || fail "the report does not give the faults their targets"
import json, sys
report = json.load(open(sys.argv[1]))
windows = {(w["fault"], w.get("target")) for w in report["fault_windows"]}
assert ("orders-partition@inventory", "inventory") in windows, windows
assert ("catalog-slow@cache", "cache") in windows, windows
assert all(t.get("lost") is None for t in report["targets"]), report["targets"]
print("fleet: each fault on its target:", sorted(windows))
PY

echo "a fleet reset with the inventory's sidecar stopped"
for target in "$CACHE_SB" "$ORDERS_DB_SB"; do
  "$switchboard" ctl --url "$target" add left-on --route "$(
    "$switchboard" --json ctl --url "$target" list | python3 -c 'import json,sys; print(json.load(sys.stdin)["routes"][0]["name"])'
  )" 'Latency(ms: 1)' >/dev/null
done
compose stop --timeout 10 inventory-switchboard >/dev/null 2>&1
out=$(mktemp)
if "$switchboard" ctl --targets "$fleet" reset --deadline 5s >"$out" 2>&1; then
  cat "$out"; rm -f "$out"; fail "reset exited 0 with a target down"
fi
cat "$out"
grep -q "1 of 3 targets have not confirmed the reset: $INVENTORY_SB" "$out" || { rm -f "$out"; fail "the stopped sidecar is not named"; }
rm -f "$out"
for target in "$CACHE_SB" "$ORDERS_DB_SB"; do
  if "$switchboard" ctl --url "$target" list | grep -q left-on; then fail "$target was not reset"; fi
done
echo "fleet demo passed"
