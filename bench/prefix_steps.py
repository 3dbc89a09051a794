"""Our SASRec after N identical optimizer steps on ml-1m, in several block variants.

Why: after the same 1,000 prefix-layout batches as RecBole, our SASRec in the paper's
pre-LN layout scored far below RecBole's (docs/benchmarks.md). This trains our prefix
layout for ``--batches`` batches (the same random draw of training pairs as
``bench/backbones.py --max-batches``) in each variant and prints test NDCG@10 / Hit@10
under both protocols, so the variants can be compared with RecBole's row of a
``bench/backbones.py --max-batches N`` run of the same seed.

Variants (SASRecConfig options):
  scaled    item embeddings x sqrt(dim), pre-LN (the authors' code; our default since
            SASRec revision 2)
  unscaled  pre-LN without the scale (our default before revision 2)
  post-ln   RecBole's layout: post-LN, LayerNorm on the embeddings, no scale

Usage:
    .venv/bin/python bench/prefix_steps.py --variants scaled unscaled post-ln --seed 0 \\
        --out bench/results/ml-1m-prefix-steps/seed0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backbones as bench

VARIANTS = {
    "scaled": {"scale_embeddings": True},
    "unscaled": {"scale_embeddings": False},
    "post-ln": {"norm_first": False, "scale_embeddings": False},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--batches", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/slimrec-bench"))
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    args = argparse.Namespace(
        work=a.work,
        max_len=50,
        batch_size=256,
        lr=1e-3,
        threads=a.threads,
        seed=a.seed,
        protocol="masked",
        device="cpu",
        max_batches=a.batches,
    )
    data = bench.prepare(a.dataset, a.work)
    rows = []
    for name in a.variants:
        res = bench.time_ours_prefix_partial(data, "sasrec", args, model_extra=VARIANTS[name])
        rows.append({"variant": name} | res)
        masked, unmasked = (res["test_protocols"][k] for k in ("masked", "unmasked"))
        print(
            f"{name}: NDCG@10 / Hit@10 masked {masked['ndcg@10']:.4f} / {masked['hit@10']:.4f},"
            f" unmasked {unmasked['ndcg@10']:.4f} / {unmasked['hit@10']:.4f}",
            flush=True,
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    blob = {"machine": bench.machine(), "args": vars(a) | {"work": str(a.work), "out": str(a.out)}}
    a.out.write_text(json.dumps(blob | {"results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
