#!/usr/bin/env bash
# Create .venv (once) with the CPU build of PyTorch and dulzip installed in editable mode.
# Source it (". scripts/setup.sh") or run it; it is idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import dulzip, torch, constriction, numba, pytest, hypothesis" 2>/dev/null; then
    .venv/bin/python -m pip install -q --upgrade pip
    # The CPU build of PyTorch first: a plain 'torch' requirement can pull a multi-GB CUDA build.
    # On machines without a local CPU wheel, add: --index-url https://download.pytorch.org/whl/cpu
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[test,bench]"
fi
