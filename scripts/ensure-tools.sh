#!/usr/bin/env bash
# Installs the Debian tools the tests, the demo and the lab use, when they are missing (needs root and apt).
set -euo pipefail
declare -A pkgs=([ip]=iproute2 [nstat]=iproute2 [ping]=iputils-ping [arping]=iputils-arping [ethtool]=ethtool
  [curl]=curl [tshark]=tshark [chromium]=chromium [sysctl]=procps [make]=make [g++]=g++ [python3]=python3
  [keepalived]=keepalived [bpftool]=bpftool [promtool]=prometheus [bird]=bird2 [birdc]=bird2 [setpriv]=util-linux
  [nginx]=nginx-light [haproxy]=haproxy)
need=()
for cmd in "${!pkgs[@]}"; do command -v "$cmd" >/dev/null 2>&1 || need+=("${pkgs[$cmd]}"); done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing tools: $(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')(install them, or run as root on Debian)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing: $(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
