#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first (Python packages, BIND9).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/python -m pytest "$@"
