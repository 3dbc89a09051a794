"""The work behind ``slimrec recommend``: one question to a run, answered in the terminal.

The same :class:`~slimrec.serve.service.RecommendService` as the API, with the API's
checks (``k`` and history bounds, item references resolved against the catalog), turned
into one-line :class:`~slimrec.errors.ConfigError` messages instead of HTTP statuses.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from slimrec.errors import ConfigError
from slimrec.serve.catalog import Catalog, UnknownItem
from slimrec.serve.schemas import MAX_HISTORY, MAX_K


def split_history(values: list[str] | None, catalog: Catalog) -> list[str]:
    """``--history`` values as item references (original ids or titles, as shown).

    Each value is one item when the catalog knows it whole (a title may hold commas),
    else a comma-separated list of items. Digits are read as the original id the page and
    tables show, and as a dense id only when no item has that original id.
    """
    refs: list[str] = []
    for value in values or []:
        value = value.strip()
        if not value:
            continue
        try:
            catalog.resolve(value)
            refs.append(value)
        except UnknownItem:
            refs += [part.strip() for part in value.split(",") if part.strip()]
    return refs


def recommend_once(
    run: str | Path,
    *,
    user: str | None,
    history: list[str] | None,
    k: int,
    method: str = "slim",
    backbone: str | None = None,
    seed: int = 0,
    style: str = "auto",
) -> str | None:
    """Answer once; return text to print (``None`` when rich already printed it)."""
    from slimrec.serve.app import to_response
    from slimrec.serve.service import RecommendService
    from slimrec.serve.table import show

    if (user is None) == (not history):
        raise ConfigError("give exactly one of --user or --history", fix="e.g. --user 196")
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must lie in 1..{MAX_K}, got {k}")
    service = RecommendService(
        run, method=method, backbone=backbone, seed=seed, student=user is None
    )
    try:
        refs = split_history(history, service.catalog)
        if len(refs) > MAX_HISTORY:
            raise ConfigError(f"--history has {len(refs)} items; at most {MAX_HISTORY}")
        if user is not None:
            index = service.catalog.user_index(user)
            if index is None:
                raise ConfigError(
                    f"no user with id {user!r}", where=run, fix="give an original user id"
                )
            rec = service.for_user(index, k)
        else:
            ids = []
            for ref in refs:
                try:
                    ids.append(service.catalog.resolve(ref))
                except UnknownItem as e:
                    raise ConfigError(str(e), where="--history") from e
            rec = asyncio.run(service.for_history(ids, k))
    finally:
        service.close()
    if style == "json":
        return json.dumps(to_response(rec), indent=2, ensure_ascii=False)
    return show(rec, style=style)
