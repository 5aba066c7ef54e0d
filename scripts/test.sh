#!/usr/bin/env bash
# Set up (once) and run the default test suite (long tests are marked 'slow' and left out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
