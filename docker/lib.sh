# Shared by the compose scripts: a compose project with its own name, health waits and the
# host ports Docker picked. Callers set $project (and $compose_file and $services for another
# stack than the shop's) and call compose_up; the EXIT trap tears the project down (logs on
# failure) and runs $on_exit if set.
compose() { docker-compose -p "$project" -f "${compose_file:-docker/compose.yaml}" "$@"; }

fail() { echo "${script_name:-compose}: FAILED: $*" >&2; exit 1; }

compose_cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- compose logs ---" >&2
    compose logs --no-color --tail=50 >&2 || true
  fi
  compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
  if [ -n "${on_exit:-}" ]; then eval "$on_exit"; fi
  exit "$status"
}

# docker-compose v1 has no --wait: wait on the health checks ourselves.
wait_healthy() {
  local service=$1 deadline=$(( $(date +%s) + 120 )) id state
  id=$(compose ps -q "$service")
  while :; do
    state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
    [ "$state" = healthy ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || fail "$service is $state after 120 s"
    sleep 0.5
  done
}

compose_up() {
  trap compose_cleanup EXIT
  compose up -d >/dev/null 2>&1 || { compose up -d; fail "compose up"; }
  for service in ${services:-redis postgres inventory switchboard shop}; do wait_healthy "$service"; done
}

host_port() { local p; p=$(compose port "$1" "$2"); echo "127.0.0.1:${p##*:}"; }
