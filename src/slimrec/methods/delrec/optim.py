"""DELRec's optimisation: Lion, a linear warm-up/decay schedule, and the dynamic weighting
of its two stage-1 tasks.

Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023), which the
authors use through bitsandbytes (CUDA-only paged 8-bit; here in plain torch):
``u = sign(b1 m + (1 - b1) g)``, ``p <- p - lr (u + wd p)``, ``m <- b2 m + (1 - b2) g``.

Task weighting (the authors' ``MTL.py``, ../shared/specs/delrec.md Sec. 3.5):
``w_i = r_i^a / sum_j r_j^a`` with ``r_i = 1 / ||dL_i/dP||``, so the task with the
smaller gradient gets the larger weight. The authors' weights carry a gradient by
accident; these are plain numbers (detached), as the spec settles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


class Lion(torch.optim.Optimizer):
    """``Lion(params, lr, betas=(0.9, 0.99), weight_decay=0.0)``."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                update = (m * b1 + p.grad * (1 - b1)).sign_()
                p.add_(update + p * wd, alpha=-lr)
                m.mul_(b2).add_(p.grad, alpha=1 - b2)
        return None


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def task_weights(grad_norms: Sequence[float], alpha: float) -> list[float]:
    """``w_i ∝ ||g_i||^-alpha``, summing to 1 (equal for equal norms)."""
    inv = [max(float(n), 1e-12) ** -alpha for n in grad_norms]
    total = sum(inv)
    return [v / total for v in inv]
