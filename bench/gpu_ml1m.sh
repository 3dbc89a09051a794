#!/usr/bin/env bash
# ml-1m trained to convergence on both sides, on a GPU machine (issue 3).
#
# Why: on the 2-core CPU machine one RecBole epoch on ml-1m takes 25-37 minutes, so its
# quality at convergence cannot be measured there. This runs RecBole 1.2.1's SASRec and
# GRU4Rec and ours on one GPU, on the same prepared data and protocol as
# bench/backbones.py (history masked for selection; both test protocols reported).
# Batch 2048 is RecBole's own default train_batch_size and keeps RecBole's epochs short;
# ours also runs at batch 256 (the CPU benchmark's). Jobs run ONE AT A TIME: a first
# try (2026-11-30) ran six side by side and they slowed each other ~10x, so RecBole got
# through one epoch. Pick the jobs that fit the GPU time lent with JOBS.
# Needs: a python3 with torch (CUDA), numpy, pandas, pyarrow, scipy, scikit-learn, pyyaml,
# tqdm, tensorboard; the wheels in .whl/ (RecBole 1.2.1, colorlog, texttable, pydantic and
# its needs, see docs/benchmarks.md); .gpu/prepared/ml-1m from
# `slimrec data prepare --dataset ml-1m --out .gpu/prepared/ml-1m`.
# Usage: OUT=dir JOBS="recbole-sasrec ours-sasrec" bash bench/gpu_ml1m.sh
#   jobs: recbole-sasrec recbole-gru4rec ours-sasrec ours-gru4rec ours-b256 ours-prefix
# Dry run on a CPU: NO_WHEELS=1 DEVICE=cpu BUDGET=5 EPOCHS=1 OURS_EPOCHS=4 MAX_BATCHES=3
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-ml1m}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-360}      # RecBole: no epoch starts after this many seconds
EPOCHS=${EPOCHS:-300}      # RecBole's and our prefix layout's epoch cap
OURS_EPOCHS=${OURS_EPOCHS:-2000}  # our causal layout: 3 steps per epoch at batch 2048
THREADS=${THREADS:-8}
MAX_BATCHES=${MAX_BATCHES:-0}  # 0: whole epochs (a dry run on a CPU sets a few)
mkdir -p "$OUT"
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
export RECBOLE_PYTHON=${RECBOLE_PYTHON:-$(command -v python3)}
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; lscpu | grep "Model name";
 python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)") \
  > "$OUT/machine.txt" 2>&1

run() {  # run NAME ARGS...: one bench/backbones.py process with its own work dir
  local name=$1
  shift
  mkdir -p "/tmp/gpu-work/$name/prepared" /tmp/gpu-res
  cp -r .gpu/prepared/ml-1m "/tmp/gpu-work/$name/prepared/"
  timeout $((BUDGET + 180)) python3 bench/backbones.py --datasets ml-1m --device "$DEVICE" \
    --max-batches "$MAX_BATCHES" --patience 10 --threads "$THREADS" --work "/tmp/gpu-work/$name" \
    --out "/tmp/gpu-res/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc $?" >> "$OUT/machine.txt"
}

big=(--batch-size 2048)
for job in ${JOBS:-recbole-sasrec ours-sasrec ours-prefix}; do
  case $job in
    recbole-sasrec | recbole-gru4rec)
      run "$job" --backbones "${job#recbole-}" --skip-ours --ml1m-recbole-epochs "$EPOCHS" \
        --time-budget "$BUDGET" "${big[@]}" ;;
    ours-sasrec | ours-gru4rec)
      run "$job" --backbones "${job#ours-}" --skip-recbole --ml1m-epochs "$OURS_EPOCHS" \
        "${big[@]}" ;;
    ours-b256) run "$job" --backbones sasrec gru4rec --skip-recbole --ml1m-epochs 500 ;;
    ours-prefix)
      run "$job" --backbones sasrec --skip-recbole --prefix --ml1m-epochs "$EPOCHS" "${big[@]}" ;;
    *) echo "unknown job $job" >&2; exit 2 ;;
  esac
done
tar -czf "$OUT/results.tar.gz" -C /tmp/gpu-res .
grep -h "^| ml-1m" /tmp/gpu-res/*/backbones.md
