#!/usr/bin/env bash
# The main job on the embedded default: set up, then prepare MovieLens-100k and print
# its statistics. (Later stages extend this to the whole SLIM pipeline.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/slimrec data prepare --dataset ml-100k --out runs/quickstart/data --force
.venv/bin/slimrec data stats runs/quickstart/data
