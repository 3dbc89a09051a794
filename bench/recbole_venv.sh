#!/usr/bin/env bash
# A separate virtual environment with RecBole 1.2.1 for side-by-side benchmarks only
# (slimrec never depends on it). See ../shared/notes/recbole-here.md for why each step.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${RECBOLE_VENV:-.venv-recbole}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q --no-deps "recbole==1.2.1"
"$VENV/bin/python" -m pip install -q "numpy<2" scipy pandas tqdm "colorlog==4.7.2" colorama \
  scikit-learn pyyaml tensorboard thop tabulate plotly texttable psutil
echo "$VENV"
