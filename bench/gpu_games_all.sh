#!/usr/bin/env bash
# The all-users Amazon Games fits (issue 16) on a lent GPU: every Backbone and Backbone+
# fit of bench/runs/amazon-games-all/config.yaml without a record yet, WORKERS at a time.
#
# Why: on the 2-core CPU one fit over all 50,546 users takes 1-2 h, and 18 are wanted.
# WORKERS `slimrec run` processes share one copy of the run folder (each fit is trained by
# the process that takes it first); train.device auto takes the GPU. A fit's key leaves
# its device and threads out, so these are the same fits as the CPU's, and each
# stage.json names the machine that computed it.
#
# Carried to the device (all ignored here; ~40 MB with the repository):
#   .whl                the wheels its Python 3.12 lacks: pip download --no-deps
#                       --only-binary=:all: --python-version 3.12 --implementation cp
#                       --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.4
#                       pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
#   .gpu/data/amazon-games   the raw data (its content keys the prepare stage)
#   bench/runs/amazon-games-all/stages/prepare-*  and  .../embed-items-*
#                       the prepared data and the item-text embeddings (the encoder's
#                       weights do not travel; its embeddings do)
# Returns $OUT/records.tar.gz (every fit finished here, without weights: untar it into
# bench/runs/amazon-games-all/stages/), $OUT/workers.log and $OUT/machine.txt.
#
# Usage on the device (`run` with carry [.whl, .gpu, the two stage folders]):
#   OUT=$OUT BUDGET=420 WORKERS=6 bash bench/gpu_games_all.sh
# Dry run on a CPU (plumbing only): NO_WHEELS=1 OUT=/tmp/x BUDGET=40 WORKERS=1 \
#   SLIMREC_DATA_DIR=../shared/data bash bench/gpu_games_all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-games-all}
BUDGET=${BUDGET:-420}   # seconds the workers get; then each is stopped (SIGTERM) and the
WORKERS=${WORKERS:-6}   # finished fits are packed
RUN=bench/runs/amazon-games-all
WORK=${WORK:-/tmp/games-all-work}
source bench/gpu_env.sh

# A copy of the run without weights or locks: workers here never touch the committed folder.
rm -rf "$WORK" && mkdir -p "$WORK"
tar -C "$RUN" --exclude='*.pt' --exclude=.locks -cf - . | tar -C "$WORK" -xf -
ls "$WORK"/stages/*/stage.json | sed 's#/stage.json##' | sort > /tmp/games-all-before.txt

# Backbone and Backbone+ only (the same fit keys): SLIM's user-text table needs the
# encoder's weights, which do not travel, and its 50,546 rows (78 MB) do not fit the carry.
sed 's/^methods: .*/methods: [backbone, backbone+]/' "$RUN/config.yaml" > /tmp/games-all-config.yaml
for w in $(seq "$WORKERS"); do
  timeout -k 30 "$BUDGET" "$PYTHON" -m slimrec.cli run \
    --config /tmp/games-all-config.yaml --out "$WORK" > "/tmp/games-all-worker-$w.log" 2>&1 &
done
wait
for w in $(seq "$WORKERS"); do
  echo "== worker $w"; grep -E "^\[|^epoch|Error|error" "/tmp/games-all-worker-$w.log" | tail -n 60
done > "$OUT/workers.log"

# The fits finished here: their records only (gitignore's list in bench/runs/.gitignore).
ls "$WORK"/stages/fit-*/stage.json 2>/dev/null | sed 's#/stage.json##' | sort \
  | comm -13 /tmp/games-all-before.txt - > /tmp/games-all-new.txt
(cd "$WORK/stages" && sed "s#^$WORK/stages/##" /tmp/games-all-new.txt \
  | while read -r fit; do
      for f in stage.json config.yaml structure.json metrics.jsonl results.json test_per_user.npz; do
        [ -f "$fit/$f" ] && echo "$fit/$f"
      done
    done | tar -czf "$OUT/records.tar.gz" -T -)
echo "finished here: $(wc -l < /tmp/games-all-new.txt) fits" | tee -a "$OUT/machine.txt"
sed "s#^$WORK/stages/##" /tmp/games-all-new.txt | tee -a "$OUT/machine.txt"
