#!/usr/bin/env bash
# redis-benchmark and pgbench through Switchboard, in one run: each tool against its server
# directly, through a Tcp route and through the protocol route (Redis, Postgres), with no
# fault, one after the other on this machine. Prints a Markdown table for benches/README.md.
#   bash benches/databases.sh            # builds the release binary first
#   SWITCHBOARD=path/to/switchboard bash benches/databases.sh
# Needs redis-server, redis-benchmark and postgresql (apt-get install redis-server postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SWITCHBOARD:-target/release/switchboard}
[ -n "${SWITCHBOARD:-}" ] || cargo build --release --locked --bin switchboard >&2
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -n 1)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_postgres() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
pids+=($!)
[ "$(id -u)" = 0 ] && chown postgres "$work"
as_postgres "$pgbin/initdb" -D "$work/pg" -U bench --auth=trust --no-sync >/dev/null
pg_port=$(free_port)
as_postgres "$pgbin/postgres" -D "$work/pg" -p "$pg_port" -h 127.0.0.1 -k "$work" -c fsync=off \
  -c max_connections=50 >/dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"; wait_port "$pg_port"

ports=()
for _ in 1 2 3 4; do ports+=("$(free_port)"); done
mkdir -p "$work/rules"
cat >"$work/rules/bench.ron" <<RON
(routes: [
  (name: "redis-tcp", protocol: Tcp, listen: "127.0.0.1:${ports[0]}", upstream: "127.0.0.1:$redis_port"),
  (name: "redis", protocol: Redis, listen: "127.0.0.1:${ports[1]}", upstream: "127.0.0.1:$redis_port"),
  (name: "pg-tcp", protocol: Tcp, listen: "127.0.0.1:${ports[2]}", upstream: "127.0.0.1:$pg_port"),
  (name: "pg", protocol: Postgres, listen: "127.0.0.1:${ports[3]}", upstream: "127.0.0.1:$pg_port"),
])
RON
"$bin" run --rules "$work/rules" --control "127.0.0.1:$(free_port)" >"$work/switchboard.log" 2>&1 &
pids+=($!)
for p in "${ports[@]}"; do wait_port "$p"; done

# redis-benchmark: SET and GET, 50 clients, 200,000 requests each; unpipelined and -P 16.
redis_rps() { # port pipeline -> "set get" requests/s
  redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n 200000 -P "$2" -t set,get --csv 2>/dev/null |
    awk -F'","' '/^"SET"/ {s=$2} /^"GET"/ {g=$2} END {printf "%d %d", s, g}'
}
# pgbench: the select-only script, 8 clients on 2 threads for 10 s, in the extended protocol.
as_postgres "$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U bench -i -s 5 -q postgres >/dev/null 2>&1
pg_tps() { # port mode -> transactions/s, then the mean latency in ms
  "$pgbin/pgbench" -h 127.0.0.1 -p "$1" -U bench -S -c 8 -j 2 -T 10 -M "$2" postgres 2>/dev/null |
    awk '/^latency average/ {l=$4} /^tps/ {t=$3} END {printf "%d %s", t, l}'
}

echo "| path | SET/s | GET/s | SET/s -P 16 | GET/s -P 16 | pgbench -S tps (simple) | tps (prepared) | latency avg (prepared) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
row() { # name redis-port pg-port
  read -r s g <<<"$(redis_rps "$2" 1)"
  read -r sp gp <<<"$(redis_rps "$2" 16)"
  read -r ts _ <<<"$(pg_tps "$3" simple)"
  read -r tp lp <<<"$(pg_tps "$3" prepared)"
  echo "| $1 | $s | $g | $sp | $gp | $ts | $tp | $lp ms |"
}
row direct "$redis_port" "$pg_port"
row "Tcp route" "${ports[0]}" "${ports[2]}"
row "Redis / Postgres route" "${ports[1]}" "${ports[3]}"
grep -E "WARN|ERROR" "$work/switchboard.log" >&2 || true
