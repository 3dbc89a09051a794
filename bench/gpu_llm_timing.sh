#!/usr/bin/env bash
# LLM-SRec's epoch and DELRec's stages timed on a lent GPU (issues 18 and 19), on the
# amazon-office configs the CPU runs use, at SmolLM2-135M's size and at the papers' sizes.
#
# Why: on the 2-core CPU an LLM-SRec epoch over amazon-office's 485 users is ~16-18 min of
# training and ~4 min of validation (SmolLM2-135M), and the papers' models (LLM-SRec:
# Llama-3.2-3B; DELRec: Flan-T5-XL) do not run there at all. No weights reach the GPU
# machine (no hub, 64 MiB carried), so the models are random-weight folders of the
# published architectures (bench/llm_from_config.py): right for the time of a step,
# meaningless for quality. Every job is one `slimrec run` of the committed config with
# `--set` changes (one seed, one method, one LLM epoch, train.device), each under its own
# time limit so that a slow one cannot take the others' time.
#
# Carried to the device (ignored here; ~9 MB with the repository):
#   .whl                 pydantic and its needs (the image lacks them): pip download --no-deps
#                        --only-binary=:all: --python-version 3.12 --implementation cp
#                        --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.4
#                        pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
#   .gpu/data/amazon-office   the raw data (cp -r ../shared/data/amazon-office .gpu/data/)
#   .gpu/tokenizer       SmolLM2's tokenizer.json and chat_template.jinja (from
#                        $SLIMREC_CACHE/models/smollm2-135m after any local run)
# Returns $OUT/timings.md (the table), $OUT/records.tar.gz (stage records and logs, no
# weights), $OUT/machine.txt.
#
# Usage on the device (`run` with carry [.whl, .gpu], timeout_s 580):
#   OUT=$OUT bash bench/gpu_llm_timing.sh
# Dry run on a CPU (plumbing only, two-layer models): NO_WHEELS=1 DEVICE=cpu ARCHS=tiny-llama
#   DELREC_ARCHS="tiny-llama tiny-t5" SLIMREC_DATA_DIR=../shared/data OUT=/tmp/x bash bench/gpu_llm_timing.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-llm-timing}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS-"smollm2-135m llama-3.2-3b"}            # LLM-SRec's LLMs (decoder-only)
DELREC_ARCHS=${DELREC_ARCHS-"smollm2-135m flan-t5-xl"}  # DELRec's (the paper: Flan-T5-XL)
JOB_S=${JOB_S:-95}   # seconds each job may take: 4 jobs + two 3B models built in ~560 s
WORK=${WORK:-/tmp/gpu-llm-work}
MODELS=${MODELS:-/tmp/gpu-llm-models}
source bench/gpu_env.sh
export SLIMREC_PROGRESS=log
rm -rf "$WORK" && mkdir -p "$WORK" "$MODELS"

for arch in $(echo $ARCHS $DELREC_ARCHS | tr ' ' '\n' | sort -u); do
  [ -f "$MODELS/$arch/random-weights.json" ] || "$PYTHON" bench/llm_from_config.py --arch "$arch" \
    --tokenizer .gpu/tokenizer --out "$MODELS/$arch" --device "$DEVICE" >> "$OUT/models.jsonl" 2>> "$WORK/models.log"
done

job() {  # job NAME FOLDER CONFIG SETTINGS...: one `slimrec run` under its time limit (the
  local name=$1 folder=$2 config=$3; shift 3  # jobs of a folder share their SASRec fit)
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  local start=$SECONDS
  timeout -k 10 "$JOB_S" "$PYTHON" -m slimrec.cli run --config "$config" --out "$WORK/$folder" \
    --set seeds=[0] --set "train.device=$DEVICE" "${sets[@]}" > "$WORK/$name.log" 2>&1
  echo "$name: exit $? after $((SECONDS - start)) s" >> "$WORK/jobs.log"
}

# LLM-SRec, one epoch (training, validation, test), amazon-office's settings otherwise.
for arch in $ARCHS; do
  job "llmsrec-$arch" llmsrec configs/llmsrec-office.yaml diagnose.order=[] \
    "methods=[backbone, {llm-srec: {llm: $MODELS/$arch, history_items: 10, max_title_chars: 80, epochs: 1, batch_size: 8}}]"
done
# DELRec: stage 1 (64 users), stage 2 (128 users, one epoch), the test on 485 users x 20
# candidates; on the first decoder and on the encoder-decoder.
prompt="{item_noun: product, verb: purchase, verb_past: purchased, history_items: 10, max_title_chars: 60}"
for arch in $DELREC_ARCHS; do
  job "delrec-$arch" delrec configs/delrec-office.yaml \
    "methods=[backbone, {delrec: {llm: $MODELS/$arch, prompt: $prompt, stage1: {users: 64}, stage2: {users: 128, valid_users: 32}}}]"
done

"$PYTHON" - "$WORK" "$OUT/timings.md" <<'EOF'
"""One row per stage of every job: its seconds, and where each went (LLM-SRec: every
epoch's training / validation seconds; DELRec: its SR top-h, stage 1, stage 2, test)."""
import json, sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = ["| job | stage | seconds | of which |", "|---|---|---:|---|"]
for job in sorted(p for p in work.iterdir() if p.is_dir()):
    for stage in sorted((job / "stages").glob("*")):
        record, results = stage / "stage.json", stage / "results.json"
        if not record.is_file() and not stage.name.startswith("fit-"):
            continue  # DELRec's stage-1 folder: its time is in the fit's results
        seconds = json.loads(record.read_text())["seconds"] if record.is_file() else "unfinished"
        parts = []
        metrics = stage / "metrics.jsonl"
        if metrics.is_file():
            lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
            lines = [x for x in lines if "train_s" in x]
            if len(lines) <= 12:  # an LLM's epochs, one by one
                parts += [f"epoch {x['epoch']}: {x['train_s']:.0f} s train, {x['eval_s']:.0f} s valid"
                          for x in lines]
            elif lines:  # an ID backbone's hundreds of short ones, in all
                train_s, eval_s = (sum(x[k] for x in lines) for k in ("train_s", "eval_s"))
                parts.append(f"{len(lines)} epochs: {train_s:.0f} s train, {eval_s:.0f} s valid")
        if results.is_file():
            split = json.loads(results.read_text()).get("seconds")
            if isinstance(split, dict):
                parts += [f"{k} {v:.0f} s" for k, v in split.items()]
        llm = ""
        if record.is_file():
            llm = (json.loads(record.read_text())["inputs"].get("options") or {}).get("llm", "")
        name = stage.name + (f" ({Path(llm).name})" if llm else "")
        rows.append(f"| {job.name} | {name} | {seconds} | {'; '.join(parts)} |")
jobs = (work / "jobs.log").read_text() if (work / "jobs.log").is_file() else ""
out.write_text("\n".join(rows) + "\n\n" + jobs)
print(out.read_text())
EOF
tar -C "$WORK" --exclude='*.pt' --exclude='*.safetensors' --exclude='*.bin' --exclude=.locks \
  -czf "$OUT/records.tar.gz" . 2>/dev/null
ls -la "$OUT"
