"""Data layer: loaders into one canonical dataset, preprocessing, prepared storage."""

from slimrec.data.dataset import ITEM_TEXT_FIELDS, RawDataset

__all__ = ["ITEM_TEXT_FIELDS", "RawDataset"]
