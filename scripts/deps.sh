#!/usr/bin/env bash
# Installs the Debian packages vigil's tests and load scripts drive for real:
# nginx and Caddy (gateway tests), redis-server (the Redis state store's
# tests, through internal/redistest; the package brings redis-tools too),
# wrk and h2load (bench/inline.sh). Run by `make deps`, which `make test`
# runs first. Does nothing when they are already installed.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v wrk   >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: need ${need[*]} but apt-get is not available; install them with your package manager" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install ${need[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "deps: installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start system services on Debian; the tests run their own
# instances on free ports and need none of them.
for s in nginx caddy redis-server; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$s" 2>/dev/null; then
		$sudo systemctl stop "$s" || true
	fi
done
