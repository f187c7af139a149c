#!/usr/bin/env bash
# The region-failover demo in one command: builds the demo images, starts two regions, the
# shop, dnsmasq and Switchboard with docker-compose (docker/region-failover.yaml), runs
# rules/region/drills/region-failover.ron against them, and checks what the report measured
# against what the demo is known to do: the name flips 5 s after the cut (the RTO), and the
# secondary is fed 2 s behind (the RPO). The report stays in $REPORT_ROOT/region-failover
# (default drill-reports/region-failover). Exits non-zero when the drill or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash docker/build-images.sh

project="sbregion$$"
script_name="region failover"
compose_file=docker/region-failover.yaml
services="dns store-primary store-secondary switchboard shop"
# shellcheck source=docker/lib.sh
. docker/lib.sh
compose_up

export SHOP_URL="http://$(host_port shop 8080)"
control="http://$(host_port switchboard 8474)"
report="${REPORT_ROOT:-drill-reports}/region-failover"
code=0
target/x86_64-unknown-linux-gnu/release/switchboard drill rules/region/drills/region-failover.ron \
  --url "$control" --report "$report" "$@" || code=$?
[ "$code" -eq 0 ] || fail "the drill exited $code"
# The known truth: the flip comes 5 s after the cut, the lag is 2 s, a write every 200 ms.
python3 - "$report/report.json" <<'PY' || fail "the measured RTO or RPO is not the demo's"
import json, sys
probe = json.load(open(sys.argv[1]))["probes"][0]
rto = probe["measures"]["rto_ms"]
found = probe["durability"]
rpo, lost = found["rpo_ms"], len(found["lost"])
print(f"region failover: RTO {rto:.0f} ms (the name flips 5000 ms after the cut), "
      f"RPO {rpo:.0f} ms over {lost} lost writes (the secondary is fed 2000 ms behind)")
assert 5000 <= rto <= 5600, rto
assert 1600 <= rpo <= 2100, rpo
assert found["duplicates"] == {} and found["unverified"] == [], found
PY
