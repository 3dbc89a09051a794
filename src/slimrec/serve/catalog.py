"""The item catalog and user directory of a prepared dataset, for requests by people.

Clients name items by the dense id the model uses (``17``), by their original id from
the source data (``"sku42"``) or by title (``"Toy Story (1995)"``, case-insensitive).
:meth:`Catalog.resolve` turns one such reference into a dense id or says, in one line,
why it cannot (unknown, or a title shared by several items); :meth:`Catalog.search`
finds items by a substring of their title or id. Titles are untrusted text: they are
returned as data and never interpreted here (the web page renders them as text).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimrec.data.prepared import PreparedDataset


class UnknownItem(LookupError):
    """An item reference that matches no item, or several; the message says which."""


@dataclass(frozen=True)
class Item:
    id: int  # dense id 1..n_items
    raw_id: str
    title: str


class Catalog:
    """Lookup tables over ``dataset.items`` and ``dataset.users``."""

    def __init__(self, dataset: PreparedDataset):
        items = dataset.items.sort_values("item")
        ids = items["item"].to_numpy(np.int64)
        raw = items["raw_id"].astype(str).tolist()
        if "title" in items.columns:
            titles = items["title"].fillna("").astype(str).tolist()
        else:
            titles = [""] * len(raw)
        self.items: dict[int, Item] = {}
        self._by_raw: dict[str, int] = {}
        self._by_title: dict[str, list[int]] = {}
        for i, r, t in zip(ids.tolist(), raw, titles, strict=True):
            title = t.strip() or f"item {r}"
            self.items[i] = Item(i, r, title)
            self._by_raw[r] = i
            self._by_title.setdefault(title.casefold(), []).append(i)
        self._search_keys = [f"{it.title}\n{it.raw_id}".casefold() for it in self.items.values()]
        users = dataset.users.sort_values("user")
        self.user_raw: list[str] = users["raw_id"].astype(str).tolist()
        self._user_index = {r: u for u, r in enumerate(self.user_raw)}

    @property
    def n_items(self) -> int:
        return len(self.items)

    def title(self, item: int) -> str:
        return self.items[item].title

    def resolve(self, ref: int | str) -> int:
        """The dense id of an item reference (dense id, original id or exact title)."""
        if isinstance(ref, bool):
            raise UnknownItem(f"{ref!r} is not an item id or title")
        if isinstance(ref, int):
            if ref in self.items:
                return ref
            raise UnknownItem(f"no item with id {ref} (ids are 1..{self.n_items})")
        text = ref.strip()
        if text in self._by_raw:
            return self._by_raw[text]
        matches = self._by_title.get(text.casefold(), [])
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UnknownItem(
                f"title {text!r} names {len(matches)} items (ids {matches[:5]}); give an id"
            )
        if text.isdigit() and int(text) in self.items:
            return int(text)
        raise UnknownItem(f"no item with id or title {text!r}")

    def search(self, query: str, limit: int = 20) -> list[Item]:
        """Items whose title or original id contains ``query`` (case-insensitive)."""
        q = query.strip().casefold()
        items = list(self.items.values())
        if not q:
            return items[:limit]
        found = [it for it, key in zip(items, self._search_keys, strict=True) if q in key]
        # Titles starting with the query first, then by title length (closest match).
        found.sort(key=lambda it: (not it.title.casefold().startswith(q), len(it.title)))
        return found[:limit]

    # -- users ------------------------------------------------------------------------

    def user_index(self, raw_id: str) -> int | None:
        """The dense index of a user given by the original id (None: unknown)."""
        return self._user_index.get(str(raw_id))

    def search_users(self, query: str, limit: int = 50) -> list[tuple[int, str]]:
        """``(index, original id)`` of users whose id contains ``query``."""
        q = query.strip().casefold()
        out = []
        for u, r in enumerate(self.user_raw):
            if q in r.casefold():
                out.append((u, r))
                if len(out) >= limit:
                    break
        return out
