#!/usr/bin/env bash
# The main job on the built-in local target (zone files in build/zones/; no account, no network):
# render the example spec, plan, apply, plan again (no changes), and print the PTR ticket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
pmgdns() { .venv/bin/pmgdns "$@"; }
set -x
pmgdns validate
pmgdns render
pmgdns plan
pmgdns apply --yes
pmgdns plan --detailed-exitcode
pmgdns ptr-ticket
