"""User text table: each user's rationale (or one step of it) as a sentence embedding.

SLIM fuses the embedding of a user's rationale into the user vector. The rationale files
(``slimrec teach``: some users; ``slimrec reason``: every user) hold one row per user
with the whole ``response`` and its parsed steps ``step1``..``step3``
(:data:`slimrec.methods.slim.teach.COLUMNS`). Rows are indexed by the *dense user index* of the
prepared dataset. A user without a rationale, or whose chosen text is empty (a step the
parser could not find), gets an all-zero row -- "no text" -- and is counted, so the caller
can report how many users the text reaches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from slimrec.errors import ConfigError
from slimrec.methods.slim.config import TEXT_FIELDS
from slimrec.text.encoder import TextEncoder

WHERE = "rationales table"


def user_texts(rationales: pd.DataFrame, n_users: int, field: str = "response") -> list[str]:
    """The text of ``field`` for every user index ``0..n_users - 1`` ("" where there is none)."""
    if field not in TEXT_FIELDS:
        raise ConfigError(f"unknown rationale field {field!r}", fix=f"use one of {TEXT_FIELDS}")
    for column in ("user", field):
        if column not in rationales.columns:
            raise ConfigError(
                f"no column {column!r} (columns: {list(rationales.columns)})",
                where=WHERE,
                fix="pass the Parquet file written by `slimrec teach` or `slimrec reason`",
            )
    users = pd.to_numeric(rationales["user"], errors="coerce")
    if users.isna().any() or (users != users.round()).any():
        raise ConfigError("column 'user' holds non-integer values", where=WHERE)
    users = users.astype(np.int64).to_numpy()
    if len(users) and (users.min() < 0 or users.max() >= n_users):
        raise ConfigError(
            f"user indices {users.min()}..{users.max()} outside 0..{n_users - 1}",
            where=WHERE,
            fix="use rationales written for this prepared dataset",
        )
    if len(np.unique(users)) != len(users):
        dup = int(pd.Series(users)[pd.Series(users).duplicated()].iloc[0])
        raise ConfigError(f"user {dup} has more than one row", where=WHERE, fix="keep one per user")
    texts = [""] * n_users
    for user, text in zip(users, rationales[field].fillna("").astype(str), strict=True):
        texts[int(user)] = text.strip()
    return texts


def user_text_table(
    rationales: pd.DataFrame, n_users: int, encoder: TextEncoder, field: str = "response"
) -> tuple[np.ndarray, int]:
    """``([n_users, d] float32 embeddings, number of users without text)``.

    Row ``u`` embeds user ``u``'s ``field`` (``response``, ``step1``, ``step2`` or
    ``step3``) through ``encoder`` (cached by content hash); users without it get zeros.
    """
    texts = user_texts(rationales, n_users, field)
    present = [u for u, t in enumerate(texts) if t]
    vectors = encoder.encode([texts[u] for u in present], desc=f"rationales ({field})")
    table = np.zeros((n_users, encoder.dim if not present else vectors.shape[1]), np.float32)
    if present:
        table[present] = vectors
    return table, n_users - len(present)


def with_text_rows(table: np.ndarray) -> np.ndarray:
    """Which rows of a user text table hold text (bool per user): the others are the
    all-zero "no text" rows of :func:`user_text_table`."""
    return np.abs(table).sum(axis=1) > 0


def text_control(
    table: np.ndarray,
    control: str,
    seed: int,
    *,
    item_text: np.ndarray | None = None,
    read: list[np.ndarray] | None = None,
    future: list[np.ndarray] | None = None,
    share: float = 1.0,
) -> np.ndarray:
    """The user text table of a control: ``zero`` (every row zero: the fusion without any
    text), ``shuffled`` (the rows of users with text permuted among them, seeded: real
    rationales, but someone else's) or ``history`` (each rationale replaced by the mean
    text embedding of the items it was written from, ``read[u]`` rows of ``item_text``,
    scaled to the rationale's norm: the titles the LLM read, without its reasoning).
    A method that helps through what its text says beats the first two; its reasoning
    adds something beyond the titles only where it also beats ``history``.

    ``oracle`` is the positive control: for a seeded ``share`` of the users with a
    rationale, it is replaced by the mean text embedding of the items *after* its cut
    (``future[u]``: the targets it has not seen, test item included), as if it had named
    the user's next items. It leaks by design; it measures what a rationale that knew the
    future could give through the fusion, never a result.

    ``random`` and ``mean`` ask whether text that says nothing gives what text gives:
    ``random`` replaces each rationale by a seeded draw from a Gaussian with the
    rationales' own mean and covariance (a code per user that says nothing about them),
    ``mean`` replaces every rationale by the rationales' mean (one vector for all; under
    the gate designs it, not ``zero``, is the control that can open the gate). Where they
    match SLIM, its gain is not what the text says (docs/benchmarks.md, top section).
    """
    if control == "zero":
        return np.zeros_like(table)
    if control == "random":
        return random_text(table, seed)
    if control == "mean":
        out = np.zeros_like(table)
        rows = with_text_rows(table)
        if rows.any():
            out[rows] = table[rows].mean(axis=0)
        return out
    if control == "history":
        return history_text(table, item_text, read)
    if control == "oracle":
        return oracle_text(table, item_text, future, share, seed)
    if control != "shuffled":
        raise ConfigError(
            f"unknown text control {control!r}",
            fix="use 'zero', 'shuffled', 'history', 'oracle', 'random' or 'mean'",
        )
    out = table.copy()
    with_text = np.flatnonzero(with_text_rows(table))
    rng = np.random.default_rng(seed)
    # A derangement would be stricter; with hundreds of users a fixed point is rare noise.
    out[with_text] = table[rng.permutation(with_text)]
    return out


def random_text(table: np.ndarray, seed: int) -> np.ndarray:
    """The ``random`` control's table (see :func:`text_control`): every row with text
    becomes a seeded draw from N(mean, covariance) of those rows; the others stay zero."""
    rows = np.flatnonzero(with_text_rows(table))
    if len(rows) < 2:
        raise ConfigError(
            f"the random text control needs at least two users with text, got {len(rows)}",
            fix="give rationales to more users, or use the zero control",
        )
    texts = table[rows].astype(np.float64)
    mean = texts.mean(axis=0)
    # Drawing through the SVD of the centred rows keeps the covariance without forming it.
    _, singular, directions = np.linalg.svd(texts - mean, full_matrices=False)
    draws = np.random.default_rng(seed).standard_normal((len(rows), len(singular)))
    out = np.zeros_like(table)
    out[rows] = mean + (draws * singular / np.sqrt(len(rows) - 1)) @ directions
    return out


def history_text(
    table: np.ndarray, item_text: np.ndarray | None, read: list[np.ndarray] | None
) -> np.ndarray:
    """The ``history`` control's table (see :func:`text_control`); users without a
    rationale keep their zero row, so the control reaches exactly the users SLIM does."""
    return _mean_item_text(table, item_text, read, "history", with_text_rows(table))


def oracle_text(
    table: np.ndarray,
    item_text: np.ndarray | None,
    future: list[np.ndarray] | None,
    share: float,
    seed: int,
) -> np.ndarray:
    """The ``oracle`` control's table (see :func:`text_control`): the rows of a seeded
    ``share`` of the users with a rationale become the mean text of their ``future``
    items (scaled to the rationale's norm); every other row stays as it is."""
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"oracle share {share} outside (0, 1]", fix="use e.g. 0.1 or 1.0")
    with_text = np.flatnonzero(with_text_rows(table))
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(table), dtype=bool)
    chosen[rng.permutation(with_text)[: round(share * len(with_text))]] = True
    oracle = _mean_item_text(table, item_text, future, "oracle", chosen)
    return np.where(chosen[:, None], oracle, table)


def _mean_item_text(
    table: np.ndarray,
    item_text: np.ndarray | None,
    items_of: list[np.ndarray] | None,
    control: str,
    users: np.ndarray,
) -> np.ndarray:
    """Rows ``users`` (a mask) of a table of each user's mean item text over
    ``items_of[u]``, scaled to the row's norm in ``table``; zero elsewhere."""
    if item_text is None or items_of is None:
        raise ConfigError(f"the {control} control needs the item text table and the items")
    if item_text.shape[1] != table.shape[1] or len(items_of) != len(table):
        raise ConfigError(
            f"{control} control: item text {list(item_text.shape)} and {len(items_of)} "
            f"histories do not match the user text {list(table.shape)}",
            fix="embed item texts and rationales with the same encoder, one row per user",
        )
    out = np.zeros_like(table)
    norms = np.linalg.norm(table, axis=1)
    for user in np.flatnonzero(users & (norms > 0)):
        items = np.asarray(items_of[user], dtype=np.int64)
        mean = item_text[items[items > 0]].mean(axis=0) if (items > 0).any() else None
        if mean is not None and np.linalg.norm(mean) > 0:
            out[user] = mean * (norms[user] / np.linalg.norm(mean))
    return out
