"""Synthetic datasets: the authors' layout and schema, the same bytes for the same seed, aligned
maps, and references whose masks mark exactly their part."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parts2whole.body.dress import parse, render_person, sample_person
from parts2whole.densepose import densepose_problems
from parts2whole.labels import LABEL_FOLDERS, PART_LABELS
from parts2whole.synthetic import make_sample, part_crops, person_and_target_shot, write_dataset
from parts2whole.synthetic.__main__ import main
from parts2whole.training.data import PartsDataset

SIZE = (48, 64)
SIDE = 40
PEOPLE = 8


def write(root: Path, seed: int, workers: int = 1) -> Path:
    write_dataset(root, PEOPLE, seed, SIZE, SIDE, test_fraction=0.25, workers=workers, progress=False)
    return root


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synthetic")
    return {"a": write(base / "a", 3), "a_again": write(base / "a_again", 3, workers=2), "b": write(base / "b", 4)}


def entries(root: Path) -> dict[str, list[dict]]:
    return {split: [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()] for split in ("train", "test")}


def files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_same_bytes_any_workers_other_seed_other_bytes(datasets):
    first, again, other = (files(datasets[name]) for name in ("a", "a_again", "b"))
    assert first == again
    assert first["train.jsonl"] != other["train.jsonl"]
    assert first["images/000000.jpg"] != other["images/000000.jpg"]


def test_jsonl_schema_paths_and_disjoint_splits(datasets):
    root = datasets["a"]
    split = entries(root)
    assert len(split["train"]) == 6 and len(split["test"]) == 2
    targets = {split_name: {entry["target"] for entry in lines} for split_name, lines in split.items()}
    assert not targets["train"] & targets["test"]
    assert len(targets["train"] | targets["test"]) == PEOPLE
    for entry in split["train"] + split["test"]:
        assert set(entry) == {"target", "appearance", "mask", "structure", "caption"}
        assert set(entry["structure"]) == {"densepose"}
        assert set(entry["mask"]) == set(entry["appearance"]) <= set(PART_LABELS)
        assert "face" in entry["appearance"] and entry["caption"]
        for label, path in entry["appearance"].items():
            assert path.startswith(LABEL_FOLDERS[label] + "/")
        paths = [entry["target"], entry["structure"]["densepose"], *entry["appearance"].values(), *entry["mask"].values()]
        assert all((root / path).is_file() for path in paths)
        if "whole body clothes" in entry["appearance"]:
            assert not {"upper body clothes", "lower body clothes"} & set(entry["appearance"])
    assert (root / "README.md").is_file() and not (root / "openpose").exists()


def test_target_densepose_and_parsing_align(datasets):
    root = datasets["a"]
    for entry in entries(root)["train"] + entries(root)["test"]:
        target = Image.open(root / entry["target"])
        densepose = Image.open(root / entry["structure"]["densepose"])
        parsing = np.asarray(Image.open(root / "parsing" / (Path(entry["target"]).stem + ".png")))
        assert target.size == densepose.size == SIZE and parsing.shape == (SIZE[1], SIZE[0])
        assert densepose_problems(densepose) == []
        body = np.asarray(densepose).any(-1)
        assert (parsing[body] > 0).all()  # the body lies on the person
        assert parsing.max() <= 7


def test_reference_masks_mark_exactly_their_part(datasets):
    root = datasets["a"]
    for entry in entries(root)["train"]:
        for label, path in entry["mask"].items():
            mask = np.asarray(Image.open(root / path))
            photo = Image.open(root / entry["appearance"][label])
            assert photo.size == mask.shape[::-1] and max(photo.size) == SIDE
            assert set(np.unique(mask)) == {0, 255}
    sample = make_sample(3, 0, SIZE, SIDE)
    crops = part_crops(sample.person, sample.reference_figure, SIDE)
    assert set(crops) == set(sample.references)
    for label, crop in crops.items():
        part = parse(sample.person, crop) == PART_LABELS.index(label) + 1
        assert np.array_equal(np.asarray(sample.references[label].mask) == 255, part)


def test_a_whole_body_garment_has_no_upper_or_lower_reference():
    index = next(i for i in range(100) if sample_person(np.random.default_rng([5, i])).outfit.one_piece)
    references = make_sample(5, index, SIZE, SIDE).references
    assert "whole body clothes" in references
    assert not {"upper body clothes", "lower body clothes"} & set(references)


def test_a_targets_shot_replays_from_its_seed(datasets):
    """`person_and_target_shot` draws what `make_sample` draws first: replayed, it photographs the
    written target again (to JPEG's error), and another person in its place (the evaluation's floor,
    scripts/other_condition_floor.py); a wrong seed gives another photo."""
    entry = entries(datasets["a"])["train"][0]
    written = np.asarray(Image.open(datasets["a"] / entry["target"]).convert("RGB"), dtype=float)
    index = int(Path(entry["target"]).stem)

    def photo(seed: int) -> np.ndarray:
        person, shot = person_and_target_shot(np.random.default_rng([seed, index]))
        image, _, _ = render_person(person, shot.pose, shot.camera, SIZE, shot.scene)
        return np.asarray(image.convert("RGB"), dtype=float)

    assert np.abs(photo(3) - written).mean() < 2
    assert np.abs(photo(4) - written).mean() > 10


def test_command_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "data"), "--people", "2", "--size", "32x48", "--seed", "1"]) == 0
    assert "people per minute" in capsys.readouterr().out
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 1
    assert main(["--out", str(tmp_path / "data"), "--people", "2"]) == 1  # not empty: refused
    assert "not empty" in capsys.readouterr().err


def test_the_training_reader_takes_it(datasets):
    item = PartsDataset(datasets["a"], "train", size=(64, 48), random_crop=False)[0]
    assert item["present"].sum() >= 2 and item["parsing"].shape == (64, 48)
