"""Data layer: loaders → :class:`RawDataset` → :func:`prepare` → :class:`PreparedDataset`."""

from slimrec.data.dataset import ITEM_TEXT_FIELDS, RawDataset
from slimrec.data.prepared import PreparedDataset, is_prepared
from slimrec.data.preprocess import PrepareConfig, prepare

__all__ = [
    "ITEM_TEXT_FIELDS",
    "PrepareConfig",
    "PreparedDataset",
    "RawDataset",
    "is_prepared",
    "prepare",
]
