#!/usr/bin/env bash
# Installs what ipopd's demo and tests need on a fresh Debian machine (run as
# root): the network tools the namespace testbed drives, the apps the tests
# use, and the Go modules. Safe to run again; it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(iproute2 iptables iputils-ping iputils-arping iperf socat tcpdump procps kmod util-linux ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go is not installed (need Go $(sed -n 's/^go //p' go.mod))" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "setup: /dev/net/tun is missing: the TAP needs the tun module" >&2; exit 1; }
go mod download
echo "setup: ok"
