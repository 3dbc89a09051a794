#!/usr/bin/env bash
# Set up, lint, and run the test suite (no GPU, no network beyond the package registry).
# With arguments, they go to one pytest run as they are (bash scripts/test.sh tests/eval).
set -euo pipefail
cd "$(dirname "$0")/.."
# The environments take ~7 GiB (.venv 2.3, .venv-vllm 3.9, pip's unpacking beside them): a
# disk that cannot hold them fails here in one line, not deep inside a pip log.
need_gib=0
[ -x .venv/bin/python ] || need_gib=$((need_gib + 3))
[ -x .venv-vllm/bin/python ] || need_gib=$((need_gib + 5))
for dir in . "${TMPDIR:-/tmp}"; do
  free_gib=$(( $(df -Pk "$dir" | awk 'NR==2 {print $4}') / 1048576 ))
  if [ "$need_gib" -gt 0 ] && [ "$free_gib" -lt "$need_gib" ]; then
    echo "error: $free_gib GiB free on $(df -P "$dir" | awk 'NR==2 {print $6}') ($dir), the test environments need ~$need_gib GiB: free disk space, or set TMPDIR to a roomier disk" >&2
    exit 2
  fi
done
logs=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$logs"' EXIT
# The three environments install side by side (each mostly waits on the registry).
bash scripts/vllm-env.sh >"$logs/vllm-env.log" 2>&1 &   # vLLM in its own environment
vllm_env=$!
bash scripts/install-browser.sh >"$logs/install-browser.log" 2>&1 &   # for the page's test
browser=$!
bash scripts/setup.sh
for job in "$browser:install-browser" "$vllm_env:vllm-env"; do
  if ! wait "${job%%:*}"; then
    cat "$logs/${job#*:}.log" >&2
    echo "error: scripts/${job#*:}.sh failed (its log above)" >&2
    exit 1
  fi
  grep -v "^WARNING: Location" "$logs/${job#*:}.log" || true
done
export SLIMREC_VLLM_PYTHON="$PWD/.venv-vllm/bin/python"
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
# The tests that start Ray or vLLM (marked `engine`) run one at a time in a process of
# their own, beside the rest: on two cores that halves the wall time, and no two engines
# ever compete for the cores or the memory.
.venv/bin/python -m pytest -q -m engine -p no:cacheprovider --basetemp "$logs/engine-tmp" \
  >"$logs/engine-tests.log" 2>&1 &
engines=$!
status=0
.venv/bin/python -m pytest -q -m "not engine" --basetemp "$logs/tmp" || status=$?
engine_status=0
wait "$engines" || engine_status=$?
echo "== the engine tests (Ray, vLLM; pytest -m engine) =="
cat "$logs/engine-tests.log"
if [ "$engine_status" -gt 128 ]; then  # no pytest summary then: say what ended it
  echo "error: the engine tests' process was killed by signal $((engine_status - 128))" \
    "(9, SIGKILL, is what the kernel's out-of-memory killer sends)" >&2
fi
[ "$engine_status" -eq 0 ] || status=$engine_status
exit "$status"
