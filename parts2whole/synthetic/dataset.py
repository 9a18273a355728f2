"""Synthetic people written in the authors' dataset format (docs/method.md §6), with a parsing map per target.

Person `i` of a dataset with seed `s` is drawn from `numpy.random.default_rng([s, i])` alone, so a
seed gives the same bytes whatever the number of workers. Each person has one target photo (with
its DensePose and parsing maps) and one reference photo in another pose, seen from the front-ish;
each part's reference is a crop of that photo around the part, rendered at `reference_side` pixels
on its long side (a close-up, not an enlargement), with a mask that is exactly the part's pixels.
"""

import json
import math
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..body import Figure
from ..body.appearance import Scene
from ..body.dress import Person, describe, parse, photograph, render_person, sample_person
from ..body.render import Camera
from ..body.skeleton import Pose
from ..labels import LABEL_FOLDERS, PART_LABELS
from .poses import random_camera, random_pose, reference_view

PREVIEW_SIZE = (256, 384)
"""The reference photo is first parsed at this size, to find each part's box."""

MIN_PART_PIXELS = 40
"""A part with fewer pixels in the preview counts as hidden in the reference photo: no reference."""

CROP_MARGIN = 0.08
"""Space around a part's box, as a fraction of the box's long side."""

JPEG = {"quality": 95, "subsampling": 0}

ORIGIN_FILE = "synthetic.json"
"""Written into a dataset: its seed and target size, enough to render any of its people again."""


@dataclass
class Reference:
    photo: Image.Image
    mask: Image.Image  # "L": 255 on the part's pixels, 0 elsewhere


@dataclass
class Sample:
    """One synthetic person: a target (photo, DensePose map, parsing map), the references of its
    parts visible in the reference photo (`reference_figure`'s view) and a caption."""

    name: str
    person: Person
    target: Image.Image
    densepose: Image.Image
    parsing: np.ndarray
    reference_figure: Figure
    references: dict[str, Reference]
    caption: str


def make_sample(seed: int, index: int, size: tuple[int, int], reference_side: int) -> Sample:
    """Person `index` of the dataset with `seed`, its target of `size` = (width, height)."""
    rng = np.random.default_rng([seed, index])
    person, shot = person_and_target_shot(rng)
    target, densepose, parsing = render_person(person, shot.pose, shot.camera, size, shot.scene)
    pose, camera = reference_view(rng)
    figure = Figure(person.build, pose, camera, PREVIEW_SIZE)
    references = part_references(person, figure, Scene.sample(rng), reference_side)
    return Sample(f"{index:06d}", person, target, densepose, parsing, figure, references, describe(person))


@dataclass(frozen=True)
class Shot:
    """How a target photo is taken: the body's pose, the camera and the light."""

    pose: Pose
    camera: Camera
    scene: Scene


def person_and_target_shot(rng: np.random.Generator) -> tuple[Person, Shot]:
    """The first draws of a person's random stream: who they are, then their target photo's shot.
    Replaying them renders that target again, or another person in its place
    (`scripts/other_condition_floor.py`)."""
    person = sample_person(rng)
    return person, Shot(random_pose(rng), random_camera(rng), Scene.sample(rng))


def swapped_photo(seed: int, index: int, other: int, size: tuple[int, int]) -> tuple[Image.Image, np.ndarray]:
    """Person `other`'s appearance on person `index`'s body, in `index`'s target shot, at `size` =
    (width, height): the perfect answer to "draw this pose with that person's parts" (photo and
    parsing map). `other == index` is the target itself."""
    own, shot = person_and_target_shot(np.random.default_rng([seed, index]))
    given, _ = person_and_target_shot(np.random.default_rng([seed, other]))
    photo, _, parsing = render_person(replace(given, build=own.build), shot.pose, shot.camera, size, shot.scene)
    return photo, parsing


def part_references(person: Person, figure: Figure, scene: Scene, side: int) -> dict[str, Reference]:
    """A close-up photo of each of the person's parts visible in `figure`'s view, and its mask."""
    references = {}
    for label, crop in part_crops(person, figure, side).items():
        photo, parsing = photograph(person, crop, scene)
        mask = np.where(parsing == PART_LABELS.index(label) + 1, 255, 0).astype(np.uint8)
        references[label] = Reference(photo, Image.fromarray(mask, "L"))
    return references


def part_crops(person: Person, figure: Figure, side: int) -> dict[str, Figure]:
    """For each of the person's parts visible in `figure`'s view, that view narrowed to the part's
    box (with a margin) and drawn with `side` pixels on its long side."""
    parsing = parse(person, figure)
    crops = {}
    for label in person.labels:
        ys, xs = np.nonzero(parsing == PART_LABELS.index(label) + 1)
        if len(xs) >= MIN_PART_PIXELS:
            crops[label] = figure.crop(*crop_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), side))
    return crops


def crop_box(bounds: tuple[int, int, int, int], side: int) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
    """A part's box with a margin, and the crop size of that box's shape with `side` pixels on its long side."""
    left, top, right, bottom = bounds
    margin = CROP_MARGIN * max(right - left, bottom - top) + 1
    box = (left - margin, top - margin, right + margin, bottom + margin)
    width, height = box[2] - box[0], box[3] - box[1]
    scale = side / max(width, height)
    return box, (max(8, round(width * scale)), max(8, round(height * scale)))


def write_sample(sample: Sample, root: Path) -> dict:
    """Write a sample's files under `root`; return its jsonl entry (paths relative to `root`)."""
    entry = {
        "target": f"images/{sample.name}.jpg",
        "appearance": {},
        "mask": {},
        "structure": {"densepose": f"densepose/{sample.name}.png"},
        "caption": sample.caption,
    }
    sample.target.save(root / entry["target"], **JPEG)
    sample.densepose.save(root / entry["structure"]["densepose"])
    Image.fromarray(sample.parsing, "L").save(root / "parsing" / f"{sample.name}.png")
    for label, reference in sample.references.items():
        folder = LABEL_FOLDERS[label]
        entry["appearance"][label] = f"{folder}/{sample.name}.jpg"
        entry["mask"][label] = f"{folder}/{sample.name}_mask.png"
        reference.photo.save(root / entry["appearance"][label], **JPEG)
        reference.mask.save(root / entry["mask"][label])
    return entry


@dataclass(frozen=True)
class Job:
    """What every worker needs to make and write person `index`."""

    root: Path
    seed: int
    size: tuple[int, int]
    reference_side: int

    def __call__(self, index: int) -> dict:
        return write_sample(make_sample(self.seed, index, self.size, self.reference_side), self.root)


def held_out_people(people: int, fraction: float, seed: int) -> set[int]:
    """The people held out for testing: a random `fraction` of them (at least one, never all)."""
    count = min(max(math.ceil(people * fraction), 1 if fraction > 0 else 0), people - 1)
    return {int(i) for i in np.random.default_rng(seed).permutation(people)[:count]}


def write_dataset(
    root: Path,
    people: int,
    seed: int = 0,
    size: tuple[int, int] = (512, 768),
    reference_side: int | None = None,
    test_fraction: float = 0.1,
    workers: int = 1,
    progress: bool = True,
) -> float:
    """Write `people` synthetic people into the empty or new folder `root`; return people per minute.

    `size` is the targets' (width, height); references get `reference_side` pixels on their long
    side (default: the targets' short side).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty; write a dataset into a new or empty folder.")
    for folder in ("images", "densepose", "parsing", *LABEL_FOLDERS.values()):
        (root / folder).mkdir(parents=True, exist_ok=True)
    job = Job(root, seed, size, reference_side or min(size))
    start = time.perf_counter()
    entries = list(tqdm(_run(job, people, workers), total=people, desc="people", unit="person", disable=not progress))
    rate = people / (time.perf_counter() - start) * 60
    held_out = held_out_people(people, test_fraction, seed)
    for split, keep in (("train", lambda i: i not in held_out), ("test", lambda i: i in held_out)):
        lines = [json.dumps(entry) + "\n" for i, entry in enumerate(entries) if keep(i)]
        (root / f"{split}.jsonl").write_text("".join(lines))
    (root / "README.md").write_text(readme(people, len(held_out), seed, size, job.reference_side))
    (root / ORIGIN_FILE).write_text(json.dumps({"seed": seed, "size": list(size)}) + "\n")
    return rate


def _run(job: Job, people: int, workers: int) -> Iterator[dict]:
    if workers <= 1:
        yield from map(job, range(people))
        return
    with multiprocessing.Pool(workers) as pool:
        yield from pool.imap(job, range(people))


def readme(people: int, tested: int, seed: int, size: tuple[int, int], reference_side: int) -> str:
    folders = "\n".join(f'- `{folder}/`: references of "{label}"' for label, folder in LABEL_FOLDERS.items())
    return f"""# Synthetic Parts2Whole dataset

{people} synthetic people ({people - tested} in `train.jsonl`, {tested} in `test.jsonl`; no person
in both), made by `python -m parts2whole.synthetic --people {people} --seed {seed} --size {size[0]}x{size[1]}`
(parts2whole.synthetic). The same command writes the same bytes.

Person `NNNNNN` (6 digits) is one mannequin-like person with fixed skin, face, hair or headwear,
garments and shoes, photographed twice: the target, and a reference photo in another pose, seen
from the front-ish, from which the part references are cut.

- `images/NNNNNN.jpg`: the target photo, {size[0]}x{size[1]}.
- `densepose/NNNNNN.png`: its DensePose IUV map (R = V x 255, G = U x 255, B = part 1..24, black
  background), exact and of the body alone (no hair volume, skirt or hat).
- `parsing/NNNNNN.png`: its parsing map (mode L): 0 background, 1 hair or headwear, 2 face (all
  visible skin of the head, not the neck), 3 upper body clothes, 4 lower body clothes, 5 whole body
  clothes, 6 shoes, 7 skin and the rest.

References, one folder per part: `<folder>/NNNNNN.jpg` is a close-up of the part in the reference
photo ({reference_side} px on its long side), `<folder>/NNNNNN_mask.png` beside it is white exactly
on the part's pixels.

{folders}

`train.jsonl` / `test.jsonl`: one JSON object a line, paths relative to this folder:
`{{"target": ..., "appearance": {{label: ...}}, "mask": {{label: ...}}, "structure": {{"densepose": ...}}, "caption": ...}}`.
A person has the parts they wear that show in the reference photo: a whole-body garment (dress,
jumpsuit) replaces the upper and lower clothes; a few people are bald or barefoot.
There is no `openpose/` folder: the released model uses DensePose only.
`synthetic.json` records the seed and target size: `python -m parts2whole.evaluate` renders from
them the perfect answer for a person shown with another's parts.
"""
