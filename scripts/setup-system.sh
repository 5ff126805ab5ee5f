#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing: openssl (test
# certificates), mosquitto (a real MQTT broker), prometheus (promtool and a real server),
# postgresql and redis-server (real servers for pg and ioredis), iproute2 and util-linux
# (network namespaces, veth pairs, policy routing; runuser, setpriv and nsenter), tmux (a
# real terminal for the CLI's live view), perl-base (reads socket options back from the
# kernel; on every Debian system already), nftables (the fault suite and the socket option
# tests drop packets inside their namespaces; looked for by its full name, since under npm
# `nft` on the PATH is another program, node_modules/.bin/nft), netbase (/etc/services,
# whose ports porter leaves to services by default). Needs root when something is
# missing. Then actionlint (scripts/install-actionlint.sh).
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v promtool >/dev/null || need+=(prometheus)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v runuser >/dev/null || need+=(util-linux)
command -v setpriv >/dev/null || need+=(util-linux)
command -v nsenter >/dev/null || need+=(util-linux)
command -v nstat >/dev/null || need+=(iproute2)
command -v tmux >/dev/null || need+=(tmux)
[ -x /usr/sbin/nft ] || need+=(nftables)
perl -MSocket -e 1 2>/dev/null || need+=(perl-base)
[ -f /etc/services ] || need+=(netbase)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "run as root, or install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # (util-linux may be asked for more than once: apt-get takes it once.)
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian packages start their services; the tests start their own instances.
  for svc in mosquitto prometheus postgresql redis-server; do
    (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || true
    (command -v service >/dev/null && service "$svc" stop 2>/dev/null) || true
  done
fi

# actionlint (checks .github/workflows), built from the Go module proxy. Only the
# actionlint check needs it, and fails by itself when it is missing.
bash "$(dirname "$0")/install-actionlint.sh" >/dev/null ||
  echo "actionlint could not be installed: the actionlint check will fail" >&2
