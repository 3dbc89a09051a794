#!/usr/bin/env bash
# Create .venv (if missing) and install slimrec with its dev tools.
# torch is pinned to torch==2.13.0 first, from pip's configured index (on this project's
# CPU machines it holds the +cpu build; from plain PyPI without a GPU, install the CPU
# build first and set SLIMREC_TORCH=skip, so pip never pulls a multi-GB CUDA build); with
# SLIMREC_TORCH=skip an already installed torch (e.g. a CUDA build on a GPU) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${SLIMREC_TORCH:-cpu}" != "skip" ]; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[dev,llamacpp,ray]"
