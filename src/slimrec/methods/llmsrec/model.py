"""LLM-SRec's model: a frozen LLM reads a user's items (titles + projected CF embeddings)
and a learned read-out token; small MLPs turn its hidden state into the user vector.

Kim et al., "Lost in Sequence: Do Large Language Models Understand Sequential
Recommendation?", KDD 2025 (spec: ../shared/specs/llm-srec.md, Sec. 2). Per item of the
history the prompt holds its title and one *soft token*, the item's embedding in the
frozen sequential teacher (SASRec) projected into the LLM's input space (``item_proj``);
it ends with ``[UserOut]`` (a learned input vector), whose last hidden state through
``f_user`` is the user vector. Items are encoded alike (title, soft token, ``[ItemOut]``,
``f_item``); score = dot product. Training adds an MSE pulling the (normalised) user
vector towards the teacher's own user vector through ``f_cf`` (distillation) and a
uniformity term (:mod:`.losses`). Only the MLPs and the two read-out vectors train; the
LLM and the teacher are frozen and not part of this module's state (so ``best.pt`` holds
a few MB, and no optimiser ever sees them), but gradients flow through the LLM into the
soft tokens.

It is a :class:`~slimrec.backbones.SequentialRecommender`, so the shared trainer,
evaluation protocols, ``recommend`` and the order diagnostic all apply: the item table
is the whole catalogue encoded once and a user's vector once per history (both kept
while in eval mode, so the test's protocols and the order diagnostic's cosines do not
encode again), a user is one LLM forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slimrec.backbones.base import SequentialRecommender
from slimrec.backbones.items import ItemEncoder
from slimrec.llm.sanitize import quoted
from slimrec.llm.soft_prompt import FrozenLM, Segment, Slot
from slimrec.methods.llmsrec.config import LLMSRecConfig
from slimrec.methods.llmsrec.losses import distill_mse, retrieval_ce, uniformity

PROMPT_VERSION = "llmsrec-v2"  # v2: a title's own double quotes are made single
SOFT, READ = Slot(), Slot(read=True)


def head(d_in: int, hidden: int, d_out: int, act: nn.Module) -> nn.Sequential:
    """``Linear -> LayerNorm -> act -> Linear`` (the read-out and projection MLPs)."""
    mlp = nn.Sequential(
        nn.Linear(d_in, hidden), nn.LayerNorm(hidden), act, nn.Linear(hidden, d_out)
    )
    for m in mlp:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return mlp


class _Frozen:
    """The frozen LLM and teacher, kept out of the module tree (not saved, not trained)."""

    def __init__(self, lm: FrozenLM, teacher: SequentialRecommender | None):
        self.lm, self.teacher = lm, teacher


class LLMItemEncoder(ItemEncoder):
    """Item vectors ``f_item(h[ItemOut])`` of item prompts; row 0 (padding) is zero.

    In eval mode the whole table is computed once and kept until the next ``train()``.
    """

    def __init__(self, owner: LLMSRec):
        super().__init__()
        self.n_items, self.dim = owner.n_items_, owner.config.rep_dim
        self._owner = [owner]  # a plain list: not a submodule (no cycle in the tree)
        self._table: Tensor | None = None

    def train(self, mode: bool = True) -> LLMItemEncoder:
        self._table = None  # eval() comes here too: weights may have changed since
        return super().train(mode)

    def forward(self) -> Tensor:
        if self._table is not None and not self.training:
            return self._table
        owner = self._owner[0]
        ids = torch.arange(1, self.n_items + 1)
        rows = [owner.item_vectors(ids[i : i + owner.config.encode_batch_size])
                for i in range(0, self.n_items, owner.config.encode_batch_size)]  # fmt: skip
        table = torch.cat([torch.zeros(1, self.dim, device=rows[0].device), *rows])
        if not self.training:
            self._table = table
        return table

    def forward_ids(self, ids: Tensor) -> Tensor:
        flat = ids.reshape(-1)
        out = self._owner[0].item_vectors(flat.clamp(min=1))
        out = out.masked_fill((flat == 0)[:, None], 0.0)
        return out.reshape(*ids.shape, self.dim)


class LLMSRec(SequentialRecommender):
    """See the module docstring. ``titles[i]`` is item ``i``'s title (``titles[0]`` unused);
    ``cf_items`` ``[n_items + 1, c]`` the teacher's item table; ``teacher`` its model (None
    when the distillation weight is 0 and it is never asked)."""

    def __init__(
        self,
        lm: FrozenLM,
        titles: Sequence[str],
        cf_items: Tensor,
        config: LLMSRecConfig,
        teacher: SequentialRecommender | None = None,
    ):
        self.n_items_ = len(titles) - 1  # read by the item encoder, built before the base
        self.config = config
        super().__init__(LLMItemEncoder(self), loss="ce")
        self.frozen = _Frozen(lm, teacher)
        d, c = lm.hidden_size, int(cf_items.shape[1])
        self.titles = [quoted(str(t), config.max_title_chars) for t in titles]
        self.register_buffer("cf_items", cf_items.detach().float().clone(), persistent=False)
        mean, std = lm.embedding_stats()
        if config.frozen:
            # The labelled fast deviation: text-only prompts and fixed read-out vectors
            # (saved, so a reloaded model reads the same states), hidden states cached.
            self.item_proj = None
            self.register_buffer("user_out", torch.randn(d) * std + mean)
            self.register_buffer("item_out", torch.randn(d) * std + mean)
            self._states: dict[tuple, Tensor] = {}
        else:
            self.item_proj = head(c, d, d, nn.LeakyReLU())
            self.user_out = nn.Parameter(torch.randn(d) * std + mean)
            self.item_out = nn.Parameter(torch.randn(d) * std + mean)
        self.f_user = head(d, config.head_hidden, config.rep_dim, nn.LeakyReLU())
        self.f_item = head(d, config.head_hidden, config.rep_dim, nn.LeakyReLU())
        self.f_cf = head(c, config.rep_dim, config.rep_dim, nn.GELU())
        self._user_vectors: dict[tuple[int, ...], Tensor] = {}  # eval mode only

    def train(self, mode: bool = True) -> LLMSRec:
        self._user_vectors.clear()  # eval() comes here too; the item table clears itself
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, forgetting the vectors kept from the weights before (train()
        clears every cache, its own and the item table's, in either mode)."""
        loaded = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.train(self.training)
        return loaded

    def visible_window(self, max_len: int) -> int:
        return min(max_len, self.config.history_items)  # its prompt holds the last few

    # -- prompts ---------------------------------------------------------------------------

    def user_prompt(self, items: Sequence[int]) -> list[Segment]:
        soft = [] if self.config.frozen else [SOFT]
        parts: list[Segment] = [f"This user has {self.config.verb} these items in this order:"]
        for n, item in enumerate(items, 1):
            parts += [f"{',' if n > 1 else ''} Item No.{n}, {self.titles[item]}", *soft]
        return [*parts, ". Based on this sequence, generate user representation token:", READ]

    def item_prompt(self, item: int) -> list[Segment]:
        soft = [] if self.config.frozen else [SOFT]
        return [
            f"The item title and item embedding are as follows: {self.titles[item]}",
            *soft,
            ", then generate item representation token:",
            READ,
        ]

    def _cached_states(
        self, keys: list[tuple], prompts: list[list[Segment]], out: Tensor
    ) -> Tensor:
        """Frozen variant: the LLM's read-out states of ``prompts``, each computed once."""
        lm = self.frozen.lm
        missing = list({k: i for i, k in enumerate(keys) if k not in self._states}.values())
        with torch.no_grad():
            states = lm.read_many(
                [prompts[i] for i in missing], [out[None]] * len(missing),
                self.config.encode_batch_size,
            )  # fmt: skip
        for i, state in zip(missing, states, strict=True):
            self._states[keys[i]] = state
        return torch.stack([self._states[k] for k in keys]).to(out)

    # -- vectors ---------------------------------------------------------------------------

    def item_vectors(self, ids: Tensor) -> Tensor:
        """``f_item`` of the item prompts of ``ids`` ``[N]`` (values ``1..n_items``)."""
        lm = self.frozen.lm
        prompts = [self.item_prompt(int(i)) for i in ids.tolist()]
        if self.item_proj is None:
            keys = [("item", int(i)) for i in ids.tolist()]
            return self.f_item(self._cached_states(keys, prompts, self.item_out))
        soft = self.item_proj(self.cf_items[ids.to(self.cf_items.device)])
        slots = torch.stack([soft, self.item_out.expand_as(soft)], 1)  # [N, 2, d]
        states = lm.read_many(prompts, list(slots), self.config.encode_batch_size)
        return self.f_item(states.to(soft))

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        """``f_user`` of the prompts of the last ``history_items`` items of each history."""
        lm, k = self.frozen.lm, self.config.history_items
        histories = [
            row[: int(n)][-k:] for row, n in zip(seqs.tolist(), lengths.tolist(), strict=True)
        ]
        if self.item_proj is None:
            keys = [("user", tuple(h)) for h in histories]
            prompts = [self.user_prompt(h) for h in histories]
            return self.f_user(self._cached_states(keys, prompts, self.user_out))
        # With fixed weights (eval mode, no gradients) a history's vector is computed once.
        keep = not self.training and not torch.is_grad_enabled()
        keys = [tuple(h) for h in histories]
        todo = list(range(len(keys)))
        if keep:  # each history not yet encoded, once
            first = {key: i for i, key in enumerate(keys) if key not in self._user_vectors}
            todo = list(first.values())
        device = self.cf_items.device
        slots = [
            torch.cat([self.item_proj(self.cf_items[torch.tensor(histories[i], device=device)]),
                       self.user_out[None]])
            for i in todo
        ]  # fmt: skip
        prompts = [self.user_prompt(histories[i]) for i in todo]
        states = lm.read_many(prompts, slots, self.config.encode_batch_size)
        vectors = self.f_user(states.to(self.user_out))
        if not keep:
            return vectors
        for i, vector in zip(todo, vectors, strict=True):
            self._user_vectors[keys[i]] = vector
        return torch.stack([self._user_vectors[k] for k in keys])

    # -- training --------------------------------------------------------------------------

    def loss(
        self,
        seqs: Tensor,
        lengths: Tensor,
        targets: Tensor,
        negatives: Tensor | None = None,
        users: Tensor | None = None,
        fuse: Tensor | None = None,
    ) -> Tensor:
        """Retrieval CE over target + ``train_negatives`` unseen items, + the weighted
        distillation and uniformity terms (spec Sec. 2.4)."""
        cfg = self.config
        if negatives is None:
            negatives = self.sample_negatives(seqs, targets, cfg.train_negatives)
        u = self.encode(seqs, lengths, None)  # type: ignore[arg-type]
        candidates = self.item_encoder.forward_ids(torch.cat([targets[:, None], negatives], 1))
        total = retrieval_ce(u, candidates)
        if cfg.distill_weight or cfg.uniform_weight:
            teacher = self.frozen.teacher
            if teacher is None:
                raise RuntimeError("distillation needs the teacher model")
            with torch.no_grad():
                o_u = teacher.user_vectors(
                    seqs.to(self.cf_items.device), lengths.to(self.cf_items.device)
                )
            t = self.f_cf(o_u.float())
            total = total + cfg.distill_weight * distill_mse(u, t)
            total = total + cfg.uniform_weight * (
                uniformity(u, cfg.uniformity_t) + uniformity(t, cfg.uniformity_t)
            )
        return total

    def sample_negatives(self, seqs: Tensor, targets: Tensor, n: int) -> Tensor:
        """``[B, n]`` items drawn uniformly among those neither in the history nor the
        target (redrawn a few times, then drawn from the exact complement)."""
        negatives = torch.randint(1, self.n_items + 1, (len(seqs), n), device=seqs.device)
        seen = torch.cat([seqs, targets[:, None]], 1)
        for _ in range(5):
            clash = (negatives[:, :, None] == seen[:, None, :]).any(-1)
            if not clash.any():
                return negatives
            fresh = torch.randint(1, self.n_items + 1, negatives.shape, device=seqs.device)
            negatives = torch.where(clash, fresh, negatives)
        clash = (negatives[:, :, None] == seen[:, None, :]).any(-1)
        for row, col in clash.nonzero().tolist():
            allowed = torch.ones(self.n_items + 1, dtype=torch.bool)
            allowed[0] = False
            allowed[seen[row].cpu()] = False
            if allowed.any():  # else the user has seen everything: keep the draw
                pool = allowed.nonzero().reshape(-1)
                negatives[row, col] = pool[torch.randint(len(pool), (1,))].to(negatives)
        return negatives
