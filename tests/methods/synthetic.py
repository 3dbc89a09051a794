"""A dataset where only the user text says what comes next ("hint" data).

Items: ``N_INTRO`` "intro" items (one text direction of their own) and ``N_CLUSTERS``
clusters of ``CLUSTER_SIZE`` items (item text = the cluster's one-hot direction + noise).
Every user has a secret cluster ``c_u``; the sequence is ``intro_len`` (default: one)
random intro items, then three distinct items of ``c_u``. The training part ``s[:-2]``
therefore ends with one cluster item, always last, so no training pair ever has a
cluster item in its history: nothing but the user's text (the one-hot hint of ``c_u``,
as a rationale naming the user's taste would) can teach which cluster follows.
Validation and test targets are cluster items; a model that ignores the user text is
never trained to find them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from slimrec.data.prepared import PreparedDataset

N_INTRO, N_CLUSTERS, CLUSTER_SIZE = 40, 6, 12  # 112 items: room for 100 negatives
N_ITEMS = N_INTRO + N_CLUSTERS * CLUSTER_SIZE
D_TEXT = N_CLUSTERS + 1 + 4  # cluster one-hots, one intro direction, noise


def cluster_of(item: int) -> int:
    """Cluster of item id ``item`` (1-based), -1 for intro items."""
    return -1 if item <= N_INTRO else (item - N_INTRO - 1) // CLUSTER_SIZE


def hint_data(
    n_users: int = 300, seed: int = 0, intro_len: tuple[int, int] = (1, 2)
) -> tuple[PreparedDataset, np.ndarray, np.ndarray]:
    """``(dataset, item_text [N_ITEMS + 1, D_TEXT], user_text [n_users, D_TEXT])``.

    ``intro_len``: the range ``[low, high)`` of intro lengths.
    """
    rng = np.random.default_rng(seed)
    clusters = rng.integers(N_CLUSTERS, size=n_users)
    sequences = []
    for c in clusters:
        intro = rng.choice(
            np.arange(1, N_INTRO + 1), size=int(rng.integers(*intro_len)), replace=False
        )
        tail = N_INTRO + 1 + c * CLUSTER_SIZE + rng.choice(CLUSTER_SIZE, size=3, replace=False)
        sequences.append(np.concatenate([intro, tail]).astype(np.int64))
    item_text = np.zeros((N_ITEMS + 1, D_TEXT), dtype=np.float32)
    for item in range(1, N_ITEMS + 1):
        c = cluster_of(item)
        item_text[item, N_CLUSTERS if c < 0 else c] = 1.0
        item_text[item, N_CLUSTERS + 1 :] = 0.3 * rng.normal(size=D_TEXT - N_CLUSTERS - 1)
    item_text[1:] /= np.linalg.norm(item_text[1:], axis=1, keepdims=True)
    user_text = np.zeros((n_users, D_TEXT), dtype=np.float32)
    user_text[np.arange(n_users), clusters] = 1.0
    items = pd.DataFrame(
        {
            "item": np.arange(1, N_ITEMS + 1),
            "raw_id": [f"i{i}" for i in range(1, N_ITEMS + 1)],
            "title": [f"item {i}" for i in range(1, N_ITEMS + 1)],
        }
    )
    users = pd.DataFrame({"user": np.arange(n_users), "raw_id": [f"u{u}" for u in range(n_users)]})
    data = PreparedDataset(sequences=sequences, items=items, users=users, name=f"hint-{seed}")
    return data, item_text, user_text


def successor_data(
    n_users: int = 40, n_items: int = 30, length: int = 8, seed: int = 0
) -> tuple[PreparedDataset, np.ndarray]:
    """Users follow one hidden successor rule ``next = rule[last]`` (a random cycle over
    the items) from a random start: ``(dataset, rule)`` (``rule[0]`` unused). Items of a
    sequence are distinct, titles are ``"item <id>"``."""
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(np.arange(1, n_items + 1))
    rule = np.zeros(n_items + 1, dtype=np.int64)
    rule[cycle] = np.roll(cycle, -1)
    sequences = []
    for _ in range(n_users):
        seq = [int(rng.integers(1, n_items + 1))]
        while len(seq) < length:
            seq.append(int(rule[seq[-1]]))
        sequences.append(np.array(seq, dtype=np.int64))
    items = pd.DataFrame(
        {
            "item": np.arange(1, n_items + 1),
            "raw_id": [f"i{i}" for i in range(1, n_items + 1)],
            "title": [f"item {i}" for i in range(1, n_items + 1)],
        }
    )
    users = pd.DataFrame({"user": np.arange(n_users), "raw_id": [f"u{u}" for u in range(n_users)]})
    return PreparedDataset(sequences, items, users, "successor"), rule
