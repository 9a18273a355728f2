"""Small test inputs: noise references, rectangle masks, a DensePose-like map, and the keyword
arguments of a pipeline call built from them (at the tiny models' HEIGHT x WIDTH)."""

import numpy as np
import torch
from PIL import Image

from parts2whole import PART_LABELS

HEIGHT, WIDTH = 64, 48


def noise_image(seed: int, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = len(mode)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze(), mode=mode)


def rectangle_mask(size: tuple[int, int], box: tuple[float, float, float, float]) -> Image.Image:
    """A white rectangle (fractions of the size: left, top, right, bottom) on black."""
    width, height = size
    array = np.zeros((height, width), dtype=np.uint8)
    left, top, right, bottom = box
    array[int(top * height) : int(bottom * height), int(left * width) : int(right * width)] = 255
    return Image.fromarray(array, mode="L")


def make_parts(count: int, with_masks: bool) -> tuple[dict, dict | None]:
    """`count` parts with noise references of varied sizes and, optionally, rectangle masks."""
    labels = PART_LABELS[:count]
    appearance = {label: noise_image(10 + i, (30 + 7 * i, 40 + 5 * i)) for i, label in enumerate(labels)}
    if not with_masks:
        return appearance, None
    masks = {label: rectangle_mask(appearance[label].size, (0.1 * i, 0.0, 0.1 * i + 0.4, 0.5)) for i, label in enumerate(labels)}
    return appearance, masks


def densepose_image(size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    """A DensePose-like map: black background, a body box with U/V ramps and part indices."""
    width, height = size
    array = np.zeros((height, width, 3), dtype=np.uint8)
    top, bottom, left, right = height // 8, height - height // 8, width // 4, width - width // 4
    v_ramp = np.linspace(0, 255, bottom - top, dtype=np.uint8)[:, None]
    u_ramp = np.linspace(0, 255, right - left, dtype=np.uint8)[None, :]
    array[top:bottom, left:right, 0] = v_ramp
    array[top:bottom, left:right, 1] = u_ramp
    array[top:bottom, left:right, 2] = np.repeat(np.arange(1, 25, dtype=np.uint8), (bottom - top) // 24 + 1)[: bottom - top, None]
    return Image.fromarray(array)


def call_kwargs(count: int = 2, with_masks: bool = True, seed: int = 0, **overrides) -> dict:
    appearance, masks = make_parts(count, with_masks)
    kwargs = dict(
        appearance=appearance,
        mask=masks,
        structure={"densepose": densepose_image()},
        prompt="a person standing",
        height=HEIGHT,
        width=WIDTH,
        num_inference_steps=2,
        guidance_scale=7.5,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    kwargs.update(overrides)
    return kwargs
