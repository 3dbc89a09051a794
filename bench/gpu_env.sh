# Sourced by the bench/gpu_*.sh scripts on a lent GPU machine, in the repository root:
# installs the carried wheels (.whl: what the image lacks, e.g. pydantic) unless NO_WHEELS
# is set, points Python at this checkout's src/, the carried data (.gpu/data) and a cache
# in /tmp, and writes what the machine is to $OUT/machine.txt. Sets PYTHON (python3 unless
# given).
mkdir -p "$OUT"
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
PYTHON=${PYTHON:-python3}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
export SLIMREC_DATA_DIR=${SLIMREC_DATA_DIR:-$PWD/.gpu/data}
export SLIMREC_CACHE=${SLIMREC_CACHE:-/tmp/slimrec-cache}
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; lscpu | grep -E "Model name|^CPU\(s\)"
 "$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)") \
  > "$OUT/machine.txt" 2>&1
