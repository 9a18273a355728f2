"""Training-side code of Parts2Whole (docs/method.md §6): the dataset reader for now."""

from .data import PARSING_CLASSES, PartsDataset, collate

__all__ = ["PARSING_CLASSES", "PartsDataset", "collate"]
