"""Make the examples under examples/ from the project's own synthetic people (no third-party images).

    PYTHONPATH=. python scripts/make_examples.py

Each example is a person that no model here was trained on (dataset seed EXAMPLE_SEED): the
references and masks of their parts, as `python -m parts2whole.synthetic` makes them, and a
DensePose map of a pose-maker preset at the mini model's 3:4 aspect; the prompt is the person's
caption; example.json sets no size or steps, so each model samples at its own defaults. examples/poses/ holds the pose gallery.
"""

import json
from pathlib import Path

from parts2whole.body import Camera, render_pose
from parts2whole.body.presets import PRESETS
from parts2whole.labels import LABEL_FOLDERS
from parts2whole.synthetic.dataset import Sample, make_sample

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GALLERY = ("standing", "walking", "arms out", "hands on hips", "waving", "arms crossed", "three-quarter view", "back view")
GALLERY_SIZE = (512, 768)
EXAMPLE_POSE_SIZE = (384, 512)
EXAMPLE_SEED = 2026
REFERENCE_SIDE = 256
EXAMPLES_WANTED = {
    "top_and_trousers": lambda labels: "upper body clothes" in labels and "hair or headwear" in labels and "shoes" in labels,
    "dress": lambda labels: "whole body clothes" in labels and "shoes" in labels,
    "no_shoes": lambda labels: "upper body clothes" in labels and "shoes" not in labels,
}
EXAMPLE_POSES = {"top_and_trousers": "walking", "dress": "standing", "no_shoes": "arms out"}


def densepose(preset: str, size: tuple[int, int]):
    return render_pose(PRESETS[preset].pose, camera=Camera(yaw=PRESETS[preset].yaw), size=size)


def find_people() -> dict[str, Sample]:
    """The first person of the example seed that fits each example's description."""
    found: dict[str, Sample] = {}
    index = 0
    while len(found) < len(EXAMPLES_WANTED):
        sample = make_sample(EXAMPLE_SEED, index, (96, 128), REFERENCE_SIDE)
        for name, wanted in EXAMPLES_WANTED.items():
            if name not in found and wanted(set(sample.references)):
                found[name] = sample
                break
        index += 1
    return found


def write_example(name: str, sample: Sample) -> None:
    folder = EXAMPLES / name
    folder.mkdir(parents=True, exist_ok=True)
    densepose(EXAMPLE_POSES[name], EXAMPLE_POSE_SIZE).save(folder / "densepose.png")
    entry = {"appearance": {}, "mask": {}, "structure": {"densepose": "densepose.png"}}
    for label, reference in sample.references.items():
        stem = LABEL_FOLDERS[label]
        reference.photo.save(folder / f"{stem}.png")
        reference.mask.save(folder / f"{stem}_mask.png")
        entry["appearance"][label] = f"{stem}.png"
        entry["mask"][label] = f"{stem}_mask.png"
    entry.update({"prompt": sample.caption, "seed": 42})
    (folder / "example.json").write_text(json.dumps(entry, indent=2) + "\n")


def main() -> None:
    (EXAMPLES / "poses").mkdir(parents=True, exist_ok=True)
    for old in EXAMPLES.glob("*/*.png"):
        old.unlink()
    for preset in GALLERY:
        densepose(preset, GALLERY_SIZE).save(EXAMPLES / "poses" / f"{preset.replace(' ', '_').replace('-', '_')}.png")
    for name, sample in find_people().items():
        write_example(name, sample)


if __name__ == "__main__":
    main()
