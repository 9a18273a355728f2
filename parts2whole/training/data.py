"""Samples of a dataset in the authors' format (docs/method.md §6) as tensors for a training or evaluation step.

A dataset is a folder with `train.jsonl` / `test.jsonl`, one JSON object a line:
`{"target": path, "appearance": {label: path}, "mask": {label: path}, "structure": {"densepose":
path}, "caption": text}`, paths relative to the folder. Our synthetic datasets add `parsing/`: for
every target, `parsing/<target's file stem>.png`, a label map whose values are the indices of
`PARSING_CLASSES`. When the folder exists every item carries its target's parsing map.

The target, its DensePose map and its parsing map share ONE crop, so the pose still lies on the
person. References are NOT cropped: they go through `prepare_reference`, the very function inference
uses, so the model is trained on the inputs it will be given.
"""

import json
import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from transformers import CLIPImageProcessor

from ..labels import MAX_PARTS, PART_LABELS, order_labels
from ..preprocess import composite_on_white, load_image, pil_to_tensor, prepare_pose, prepare_reference, to_rgba

PARSING_CLASSES: tuple[str, ...] = ("background", *PART_LABELS, "skin or other")
"""What each value of a parsing map means: 0 background, 1..6 the parts in `PART_LABELS` order,
7 the rest of the person (skin, anything not one of the parts)."""

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) as fractions of an image's width and height, so one box crops maps
of different resolutions at the same place."""

WHOLE_IMAGE: Box = (0.0, 0.0, 1.0, 1.0)

POSE_RESAMPLE = Image.Resampling.NEAREST
"""The pose's blue channel holds DensePose part indices (1..24, 0 = background): categories, not
intensities. Bilinear resizing would blend neighbouring parts into a third, unrelated index along
every part boundary (parts 2 and 4 average to part 3) and fade the silhouette through low indices
(parts 1, 2) into the background. Nearest keeps every pixel a real IUV sample. Note that inference
(`prepare_pose`) resizes bilinearly, as the authors trained; pass `pose_resample` to match it."""


@dataclass(frozen=True)
class Sample:
    """One jsonl line, checked, with absolute paths; `where` names the line in error messages."""

    where: str
    target: Path
    appearance: dict[str, Path]
    mask: dict[str, Path]
    densepose: Path
    caption: str
    parsing: Path | None


class PartsDataset(Dataset):
    """The samples of `root/<split>.jsonl`, each a dict of tensors at `size` = (height, width).

    Item keys (P = MAX_PARTS slots in `PART_LABELS` order, H x W = `size`):
    `pixels` (3, H, W) in [-1, 1], the target; `pose` (3, H, W) in [0, 1], its DensePose map;
    `ref_pixels` (P, 3, H, W) in [-1, 1] and `ref_masks` (P, 1, H, W) in [0, 1], zeros where a
    slot is absent; `present` (P,) bool; `caption` (str); `clip_pixels` (P, 3, S, S), zeros where
    absent, only with a `clip_processor`; `parsing` (H, W) int64, only when `root/parsing` exists.
    Without `with_references` (a VAE trained on the targets alone) no reference is read.

    With `random_crop` the target, pose and parsing map share a random crop of the output's aspect
    covering a fraction `crop_scale` of the largest such box (the whole image when the aspects
    match), as the authors train; without it they are resized whole, as inference resizes the pose,
    so that a generated image lines up with its evaluation target. Item i's crop depends only on
    (`seed`, epoch, i), so it is the same in any worker: the key `(i, epoch)` names the epoch
    (a training sampler's way: workers hold copies of the dataset), a plain `i` the epoch last
    given to `set_epoch`.
    """

    def __init__(
        self,
        root: str | PathLike,
        split: str = "train",
        size: tuple[int, int] = (512, 512),
        random_crop: bool = True,
        crop_scale: tuple[float, float] = (0.9, 1.0),
        seed: int = 0,
        clip_processor: CLIPImageProcessor | None = None,
        pose_resample: Image.Resampling = POSE_RESAMPLE,
        with_references: bool = True,
    ) -> None:
        height, width = size
        if height <= 0 or width <= 0 or height % 8 or width % 8:
            raise ValueError(f"The training size must be positive multiples of 8 (the VAE's factor), got {size}.")
        if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}.")
        self.samples = read_samples(Path(root), split)
        self.height, self.width = height, width
        self.random_crop = random_crop
        self.crop_scale = crop_scale
        self.seed = seed
        self.epoch = 0
        self.clip_processor = clip_processor
        self.pose_resample = pose_resample
        self.with_references = with_references

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops for every item (call before each epoch; DataLoader workers get a copy)."""
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        sample = self.samples[index]
        try:
            return {**self.load(sample, np.random.default_rng([self.seed, epoch, index])), "index": torch.tensor(index)}
        except ValueError as error:
            raise ValueError(f"{sample.where}: {error}") from None

    def load(self, sample: Sample, rng: np.random.Generator) -> dict:
        size = (self.width, self.height)
        target = composite_on_white(to_rgba(load_image(sample.target, "the target image")))
        box = random_crop_box(target.size, size, self.crop_scale, rng) if self.random_crop else WHOLE_IMAGE
        pose = resize_box(to_rgba(load_image(sample.densepose, "the densepose map")), size, box, self.pose_resample)
        item = {
            "pixels": pil_to_tensor(resize_box(target, size, box, Image.Resampling.BICUBIC)) * 2.0 - 1.0,
            "pose": prepare_pose(pose, self.width, self.height),
            **(self.references(sample) if self.with_references else {}),
            "caption": sample.caption,
        }
        if sample.parsing is not None:
            parsing = resize_box(load_parsing(sample.parsing), size, box, Image.Resampling.NEAREST)
            item["parsing"] = torch.from_numpy(np.asarray(parsing, dtype=np.int64).copy())
        return item

    def references(self, sample: Sample) -> dict[str, torch.Tensor]:
        """The part slots, each prepared by `prepare_reference` exactly as inference prepares it."""
        pixels = torch.zeros(MAX_PARTS, 3, self.height, self.width)
        masks = torch.zeros(MAX_PARTS, 1, self.height, self.width)
        present = torch.zeros(MAX_PARTS, dtype=torch.bool)
        clip_images = {}
        for label, path in sample.appearance.items():
            slot = PART_LABELS.index(label)
            pixels[slot], masks[slot], clip_images[slot] = prepare_reference(
                path, sample.mask.get(label), self.width, self.height, label
            )
            present[slot] = True
        references = {"ref_pixels": pixels, "ref_masks": masks, "present": present}
        if self.clip_processor is not None:
            processed = self.clip_processor(images=list(clip_images.values()), return_tensors="pt").pixel_values
            references["clip_pixels"] = processed.new_zeros(MAX_PARTS, *processed.shape[1:])
            references["clip_pixels"][list(clip_images)] = processed
        return references


def collate(items: list[dict]) -> dict:
    """A batch: each tensor stacked along a new first axis, captions kept as a list of strings."""
    return {
        key: torch.stack([item[key] for item in items]) if torch.is_tensor(value) else [item[key] for item in items]
        for key, value in items[0].items()
    }


def random_crop_box(
    image_size: tuple[int, int], output_size: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator
) -> Box:
    """A box of the output's aspect, with a random area fraction in `scale` of the largest such box
    that fits the image, at a random place. Keeping the output's aspect keeps people undistorted."""
    width, height = image_size
    aspect = output_size[0] / output_size[1]
    side = math.sqrt(rng.uniform(*scale))
    box_width, box_height = min(width, height * aspect) * side, min(height, width / aspect) * side
    left, top = rng.uniform(0.0, width - box_width), rng.uniform(0.0, height - box_height)
    return left / width, top / height, (left + box_width) / width, (top + box_height) / height


def resize_box(image: Image.Image, size: tuple[int, int], box: Box, resample: Image.Resampling) -> Image.Image:
    """The part of `image` in `box` resized to `size` (width, height), in one resampling step."""
    left, top, right, bottom = box
    pixels = (left * image.width, top * image.height, right * image.width, bottom * image.height)
    return image.resize(size, resample, box=pixels)


def load_parsing(path: Path) -> Image.Image:
    """A parsing map: a single-channel image (mode L, or P with the classes as palette indices)."""
    image = load_image(path, "the parsing map")
    what = f"the parsing map {str(path)!r}"
    if image.mode not in ("L", "P"):
        raise ValueError(f"{what} must be a single-channel label image (mode L or P), not {image.mode}.")
    largest = int(np.asarray(image).max())
    if largest >= len(PARSING_CLASSES):
        raise ValueError(f"{what} holds class {largest}; the classes are 0..{len(PARSING_CLASSES) - 1}.")
    return image


def parsing_maps_folder(root: Path) -> Path | None:
    """`root/parsing` where the dataset has parsing maps (then every item carries one), else None."""
    folder = root / "parsing"
    return folder if folder.is_dir() else None


def read_samples(root: Path, split: str) -> list[Sample]:
    """Every line of `root/<split>.jsonl`, checked; the images themselves are read per item."""
    path = root / f"{split}.jsonl"
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}.") from None
    parsing_folder = parsing_maps_folder(root)
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            samples.append(parse_sample(json.loads(line), root, parsing_folder, where))
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno}).") from None
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if not samples:
        raise ValueError(f"{path} holds no sample.")
    return samples


def parse_sample(entry: object, root: Path, parsing_folder: Path | None, where: str) -> Sample:
    if not isinstance(entry, dict):
        raise ValueError("a sample must be a JSON object.")
    target, caption = entry.get("target"), entry.get("caption")
    if not isinstance(target, str):
        raise ValueError("'target' must be an image path.")
    if not isinstance(caption, str):
        raise ValueError("'caption' must be a text.")
    appearance, mask, structure = (path_map(entry, group, root) for group in ("appearance", "mask", "structure"))
    labels = order_labels(appearance)
    if mask:
        order_labels(mask)
    unmatched = sorted(set(mask) - set(appearance))
    if unmatched:
        raise ValueError(f"mask(s) for {unmatched} but no appearance image for them.")
    if "densepose" not in structure:
        raise ValueError("'structure' has no 'densepose' map.")
    return Sample(
        where=where,
        target=root / target,
        appearance={label: appearance[label] for label in labels},
        mask=mask,
        densepose=structure["densepose"],
        caption=caption,
        parsing=parsing_folder / f"{Path(target).stem}.png" if parsing_folder else None,
    )


def path_map(entry: dict, group: str, root: Path) -> dict[str, Path]:
    """`entry[group]`, a dict from names to paths relative to `root`, with the paths made absolute."""
    paths = entry.get(group) or {}
    if not isinstance(paths, dict) or not all(isinstance(p, str) for p in paths.values()):
        raise ValueError(f"{group!r} must map names to image paths.")
    return {name: root / p for name, p in paths.items()}
