"""Automatic part masks from the SegFormer clothes parser (`mattmdjaga/segformer_b2_clothes`)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

from .labels import PART_LABELS

PART_CLASSES: dict[str, frozenset[int]] = {
    "face": frozenset({11}),
    "hair or headwear": frozenset({1, 2}),
    "upper body clothes": frozenset({4}),
    "lower body clothes": frozenset({5, 6}),
    "whole body clothes": frozenset({4, 5, 6, 7}),
    "shoes": frozenset({9, 10}),
}
"""The parser's classes that make up each part (1 hat, 2 hair, 4 upper clothes, 5 skirt, 6 pants,
7 dress, 9/10 left/right shoe, 11 face)."""

assert set(PART_CLASSES) == set(PART_LABELS)


class PartMasker:
    """Runs the clothes parser once per image and returns the mask of the part asked for."""

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        self.processor = SegformerImageProcessor.from_pretrained(weights)
        self.model = SegformerForSemanticSegmentation.from_pretrained(weights).to(device).eval()
        self.device = device

    @torch.no_grad()
    def classes(self, image: Image.Image, max_side: int = 1024) -> np.ndarray:
        """(H, W) class index per pixel, at the image's own size.

        The logits are brought to at most `max_side` pixels a side before the argmax, and the class
        map to the image's size after it, so a huge image costs no more than a large one.
        """
        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt").to(self.device)
        logits = self.model(**inputs).logits
        scale = min(1.0, max_side / max(image.size))
        working = (max(1, round(image.height * scale)), max(1, round(image.width * scale)))
        logits = F.interpolate(logits, size=working, mode="bilinear", align_corners=False)
        class_map = Image.fromarray(logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy())
        return np.asarray(class_map.resize(image.size, Image.Resampling.NEAREST))

    def __call__(self, image: Image.Image, label: str) -> Image.Image:
        """White where `image` shows the part `label`, as an 'L' image of the same size."""
        return mask_of(self.classes(image), label)


def mask_of(class_map: np.ndarray, label: str) -> Image.Image:
    return Image.fromarray(np.isin(class_map, list(PART_CLASSES[label])).astype(np.uint8) * 255, mode="L")
