#!/usr/bin/env bash
# The main job on the built-in local target (zone files in build/zones/; no account, no network):
# render the example spec, plan, apply, plan again (no changes), and print the PTR ticket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
run() {  # echo each command once, as you would type it, then run it
  printf '\n$ pmgdns %s\n' "$*"
  .venv/bin/pmgdns "$@"
}
run validate
# validate has shown the example's warnings (documentation addresses, expected in an example);
# the other commands need not repeat them
export PMGDNS_QUIET=1
run render
run plan
run apply --yes
run plan --detailed-exitcode
run ptr-ticket
