#!/usr/bin/env bash
# The region-failover demo's upstream DNS server: Debian's dnsmasq (dnsmasq-base) on a
# debootstrap root (docker/debian-image.sh), with dig (dnsutils) for its health check. What it
# answers is on its command line, in docker/region-failover.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/debian-image.sh "${1:-switchboard-demo-dnsmasq:bookworm}" dnsmasq-base,dnsutils - \
  --change 'EXPOSE 53/udp' \
  --change 'EXPOSE 53/tcp' \
  --change 'ENTRYPOINT ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--log-facility=-", "--user=nobody", "--group=nogroup"]'
