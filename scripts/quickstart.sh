#!/usr/bin/env bash
# The main job on the embedded default: set up .venv, then run the whole SLIM pipeline
# (configs/quickstart.yaml: MovieLens-100k, local teacher and student, offline) into
# runs/quickstart/, ending with runs/quickstart/report.md. Re-running reuses every
# finished stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/slimrec run --config configs/quickstart.yaml --out runs/quickstart
