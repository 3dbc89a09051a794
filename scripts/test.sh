#!/usr/bin/env bash
# Set up, lint, and run the test suite (no GPU, no network beyond the package registry).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh   # chromium + driver for the serving page's browser test
bash scripts/vllm-env.sh          # vLLM in its own environment, for the vllm engine's tests
export SLIMREC_VLLM_PYTHON="$PWD/.venv-vllm/bin/python"
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
.venv/bin/python -m pytest -q "$@"
