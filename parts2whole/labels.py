"""The six part labels of Parts2Whole.

The labels are exact strings: the appearance encoder reads each one as its text prompt, so a typo
would silently change the model's input. Everything that takes labels from a user goes through
`order_labels`, which also fixes the order the parts are processed in, so that the result of a
generation does not depend on the order a user listed them.
"""

from collections.abc import Iterable

PART_LABELS: tuple[str, ...] = (
    "hair or headwear",
    "face",
    "upper body clothes",
    "lower body clothes",
    "whole body clothes",
    "shoes",
)
"""Every label the released model knows, in head-to-toe order (the order parts are processed in)."""

MAX_PARTS = len(PART_LABELS)
"""The number of image tokens in the cross-attention context; unused slots are zero tokens."""

LABEL_FOLDERS: dict[str, str] = {
    "hair or headwear": "hair_headwear",
    "face": "face",
    "upper body clothes": "upper_body_clothes",
    "lower body clothes": "lower_body_clothes",
    "whole body clothes": "whole_body_clothes",
    "shoes": "shoes",
}
"""Folder names of each label in the authors' dataset layout."""


def order_labels(labels: Iterable[str]) -> list[str]:
    """Check that `labels` are known, non-empty and unique, and return them in `PART_LABELS` order."""
    given = list(labels)
    unknown = [label for label in given if label not in PART_LABELS]
    if unknown:
        known = ", ".join(repr(label) for label in PART_LABELS)
        raise ValueError(f"Unknown part label(s) {', '.join(map(repr, unknown))}; the labels are: {known}.")
    if not given:
        raise ValueError("No parts given: pass at least one reference image, e.g. appearance={'face': image}.")
    if len(set(given)) != len(given):
        raise ValueError(f"A part label is given twice: {given}.")
    return [label for label in PART_LABELS if label in given]
