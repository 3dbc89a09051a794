"""The text that stands for an item: title, brand, categories and description, capped.

One function so that the "+" backbones, SLIM and serving all embed the same string.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from slimrec.text.encoder import TextEncoder

DEFAULT_MAX_CHARS = 512


def item_text(
    title: str,
    brand: str = "",
    categories: str = "",
    description: str = "",
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """``"Title. Brand: B. Categories: C. Description"``, empty parts out, cut at ``max_chars``."""
    parts = [title.strip()]
    if brand.strip():
        parts.append(f"Brand: {brand.strip()}")
    if categories.strip():
        parts.append(f"Categories: {categories.strip()}")
    if description.strip():
        parts.append(description.strip())
    text = ". ".join(p.rstrip(".") for p in parts if p) + "."
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def item_texts(items: pd.DataFrame, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Texts of a prepared catalog, in its row order (item id 1, 2, ...)."""
    cols = [
        items[c].fillna("").astype(str) for c in ("title", "brand", "categories", "description")
    ]
    return [item_text(t, b, c, d, max_chars=max_chars) for t, b, c, d in zip(*cols, strict=True)]


def item_embedding_table(items: pd.DataFrame, encoder: TextEncoder) -> np.ndarray:
    """``[n_items + 1, d]`` embeddings of the catalog's texts; row 0 (padding) is zeros."""
    vectors = encoder.encode(item_texts(items), desc="item texts")
    return np.vstack([np.zeros((1, vectors.shape[1]), dtype=np.float32), vectors])
