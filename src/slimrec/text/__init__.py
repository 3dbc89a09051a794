"""Text: item descriptions and the sentence encoder that embeds them and rationales."""

from slimrec.text.encoder import DEFAULT_ENCODER, PACKAGED_ENCODERS, TextEncoder
from slimrec.text.items import item_embedding_table, item_text, item_texts

__all__ = [
    "DEFAULT_ENCODER",
    "PACKAGED_ENCODERS",
    "TextEncoder",
    "item_embedding_table",
    "item_text",
    "item_texts",
]
