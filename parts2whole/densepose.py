"""Telling a DensePose IUV map from other images, and showing one so that people can read it.

A DensePose map (docs/method.md §1) is black where there is no body; body pixels hold V and U in red and
green and the part index 1..24 in blue. JPEG-saved maps are a little noisy, so the checks allow
a few levels of slack.
"""

import numpy as np
from PIL import Image

NUM_PARTS = 24
BLACK_LEVEL = 12  # a pixel with every channel at or below this is background
INDEX_SLACK = 6  # JPEG noise on the part index channel (chroma subsampling blurs part edges)

PART_NAMES = (
    "torso back", "torso front", "right hand", "left hand", "left foot", "right foot",
    "right upper leg back", "left upper leg back", "right upper leg front", "left upper leg front",
    "right lower leg back", "left lower leg back", "right lower leg front", "left lower leg front",
    "left upper arm front", "right upper arm front", "left upper arm back", "right upper arm back",
    "left lower arm front", "right lower arm front", "left lower arm back", "right lower arm back",
    "right head", "left head",
)  # fmt: skip
"""DensePose's names of part indices 1..24."""


def background_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: where a DensePose map's (H, W, 3) pixels show no body (every channel black)."""
    return (rgb <= BLACK_LEVEL).all(axis=-1)


def densepose_problems(image: Image.Image) -> list[str]:
    """Why `image` does not look like a DensePose map; empty when it does."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    background = background_mask(rgb)
    body = ~background
    problems = []
    if background.mean() < 0.2:
        problems.append(
            f"only {background.mean():.0%} of it is black background; a DensePose map is black wherever there is no body"
        )
    if body.mean() < 0.01:
        problems.append("it shows no body: it is (almost) all black")
    elif (out_of_range := (rgb[..., 2][body] > NUM_PARTS + INDEX_SLACK).mean()) > 0.2:
        problems.append(
            f"{out_of_range:.0%} of its body pixels have a blue (part index) value above {NUM_PARTS}; "
            "DensePose part indices run from 1 to 24"
        )
    return problems


def part_palette() -> np.ndarray:
    """(25, 3) uint8: black for the background, then 24 well-separated colours."""
    hues = (np.arange(NUM_PARTS) * 7 % NUM_PARTS) / NUM_PARTS  # neighbours in index get distant hues
    colours = [Image.new("HSV", (1, 1), (int(h * 255), 200, 235)).convert("RGB").getpixel((0, 0)) for h in hues]
    return np.array([(0, 0, 0), *colours], dtype=np.uint8)


def densepose_preview(image: Image.Image) -> Image.Image:
    """A false-colour view: one colour per body part, shaded by V so the parts' orientation shows."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    index = np.clip(np.rint(rgb[..., 2]), 0, NUM_PARTS).astype(np.int64)
    index[background_mask(rgb)] = 0
    colours = part_palette()[index].astype(np.float32)
    shade = 0.55 + 0.45 * rgb[..., 0:1] / 255.0
    return Image.fromarray(np.clip(colours * shade, 0, 255).astype(np.uint8))
