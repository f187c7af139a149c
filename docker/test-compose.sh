#!/usr/bin/env bash
# The docker-compose integration test: the demo shop through Switchboard in containers.
# Builds the images, brings the stack up, checks the shop's normal mode, partitions the
# orders dependency through the control API and checks the reduced mode (catalog 200, orders
# 503 with the message), lifts the fault and checks recovery, makes the orders database
# read-only (history still 200, orders 503), does the same through a rules
# file edit (hot reload through the mount), and checks a clean stop on SIGTERM. Tears
# everything down on the way out, also on failure; only the cached image tags stay.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

bash docker/build-images.sh

rules=$(mktemp -d)
cp rules/shop/*.ron "$rules/"
chmod 755 "$rules"
export SHOP_RULES="$rules"
project="sbdemo$$"
script_name="compose test"
on_exit='rm -rf "$rules"'
# shellcheck source=docker/lib.sh
. docker/lib.sh
compose_up

shop=$(host_port shop 8080)
control=$(host_port switchboard 8474)

# request METHOD PATH -> prints "STATUS BODY"
request() {
  local out status
  out=$(mktemp)
  status=$(curl -s -o "$out" -w '%{http_code}' -X "$1" --max-time 5 "http://$shop$2") || status=000
  echo "$status $(cat "$out")"
  rm -f "$out"
}
expect() { # expect METHOD PATH STATUS [BODY-SUBSTRING]
  local got
  got=$(request "$1" "$2")
  [ "${got%% *}" = "$3" ] || fail "$1 $2: expected $3, got: $got"
  [ -z "${4:-}" ] || [[ "$got" == *"$4"* ]] || fail "$1 $2: expected body with '$4', got: $got"
}
# eventually METHOD PATH STATUS [BODY]: the same, retried for up to 10 s
eventually() {
  local deadline=$(( $(date +%s) + 10 ))
  until ( expect "$@" ) 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || expect "$@"
    sleep 0.2
  done
}
set_fault() { # set_fault NAME true|false
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH --max-time 5 \
    -H 'Content-Type: application/json' -d "{\"enabled\": $2}" "http://$control/v1/faults/$1")
  [ "$status" = 200 ] || fail "PATCH /v1/faults/$1 answered $status"
}

echo "normal mode"
expect GET /catalog 200 kettle
expect POST /orders 201 '"order":"placed"'

echo "Toxiproxy's API by service name from another container (Host: toxiproxy:8474)"
# toxi METHOD PATH [BODY]: the raw answer, from a container on the project's network (bash's
# /dev/tcp in the Debian image; no client library, nothing but HTTP/1.1 as clients send it).
toxi() {
  docker run --rm --network "${project}_default" switchboard-demo-redis:bookworm bash -c '
    exec 3<>/dev/tcp/toxiproxy/8474
    printf "%s %s HTTP/1.1\r\nHost: toxiproxy:8474\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s" \
      "$0" "$1" "${#2}" "$2" >&3
    cat <&3' "$1" "$2" "${3:-}"
}
expect_toxi() { # expect_toxi STATUS METHOD PATH [BODY]
  local got
  got=$(toxi "$2" "$3" "${4:-}")
  [[ "$got" == "HTTP/1.1 $1"* ]] || fail "$2 $3 by service name: expected $1, got: ${got:0:300}"
}
expect_toxi 200 GET /proxies
expect_toxi 200 POST /proxies/orders-inventory/toxics \
  '{"name": "by-name", "type": "latency", "attributes": {"latency": 1}}'
expect_toxi 204 DELETE /proxies/orders-inventory/toxics/by-name

echo "orders dependency partitioned through the control API"
set_fault orders-partition true
expect POST /orders 503 "ordering is temporarily unavailable"
expect GET /catalog 200 kettle

echo "fault lifted: recovery"
set_fault orders-partition false
eventually POST /orders 201 '"order":"placed"'
expect GET /catalog 200 kettle

echo "the orders database read-only (SqlError 25006 on writes): history and catalog go on"
expect GET /orders 200 '"sku":"kettle"'
set_fault orders-read-only true
expect POST /orders 503 "ordering is temporarily unavailable"
expect GET /orders 200 '"sku":"kettle"'
expect GET /catalog 200 kettle
set_fault orders-read-only false
eventually POST /orders 201 '"order":"placed"'

echo "the same partition from a rules-file edit (hot reload through the mount)"
python3 - "$rules/shop.ron" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r'(name: "orders-partition", route: "orders-inventory", enabled: )false', r'\1true', text)
open(path + ".tmp", "w").write(text)
PY
mv "$rules/shop.ron.tmp" "$rules/shop.ron"
eventually POST /orders 503 "ordering is temporarily unavailable"
expect GET /catalog 200 kettle
cp rules/shop/shop.ron "$rules/shop.ron.tmp" && mv "$rules/shop.ron.tmp" "$rules/shop.ron"
eventually POST /orders 201 '"order":"placed"'

echo "clean stop on SIGTERM"
id=$(compose ps -q switchboard)
compose stop --timeout 10 switchboard >/dev/null 2>&1
code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
[ "$code" = 0 ] || fail "switchboard exited with $code on SIGTERM"

echo "compose test passed in $(( $(date +%s) - started )) s"
