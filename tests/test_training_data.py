import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from transformers import CLIPImageProcessor

from parts2whole.labels import PART_LABELS
from parts2whole.preprocess import pil_to_tensor, prepare_reference
from parts2whole.training import PARSING_CLASSES, PartsDataset, collate
from parts2whole.training.data import random_crop_box

TARGET_SIZE = (64, 96)  # width, height: the same 2:3 aspect as SIZE
SIZE = (48, 32)  # height, width
MARKER = (slice(40, 48), slice(26, 34))  # rows, columns: inside every crop of scale >= 0.5
BODY = (slice(10, 90), slice(4, 20))
MARKER_PART, MARKER_CLASS = 24, 6

SAMPLES = [
    {"appearance": {"face": "face_0.png", "upper body clothes": "upper_0.png"}, "mask": {"face": "face_0_mask.png"}},
    {
        "appearance": {"shoes": "shoes_1.png", "hair or headwear": "hair_1.png"},
        "mask": {"shoes": "shoes_1_mask.png", "hair or headwear": "hair_1_mask.png"},
    },
]


def target_image() -> Image.Image:
    """Grey, a blue body and a red marker."""
    array = np.full((*TARGET_SIZE[::-1], 3), 128, dtype=np.uint8)
    array[BODY] = (50, 50, 200)
    array[MARKER] = (255, 0, 0)
    return Image.fromarray(array)


def densepose_image() -> Image.Image:
    """Black background; the body with U/V ramps and part-index bands 1..23; the marker is part 24."""
    array = np.zeros((*TARGET_SIZE[::-1], 3), dtype=np.uint8)
    rows, columns = BODY
    height, width = rows.stop - rows.start, columns.stop - columns.start
    array[BODY + (0,)] = np.linspace(10, 250, height, dtype=np.uint8)[:, None]
    array[BODY + (1,)] = np.linspace(10, 250, width, dtype=np.uint8)[None, :]
    array[BODY + (2,)] = np.repeat(np.arange(1, 24, dtype=np.uint8), height // 23 + 1)[:height, None]
    array[MARKER] = (128, 128, MARKER_PART)
    return Image.fromarray(array)


def parsing_image() -> Image.Image:
    array = np.zeros(TARGET_SIZE[::-1], dtype=np.uint8)
    array[BODY] = 3
    array[MARKER] = MARKER_CLASS
    return Image.fromarray(array, mode="L")


def reference_image(seed: int, alpha: bool) -> Image.Image:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (40 + seed, 30 + seed, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        array[..., 3] = 0
        array[5:30, 5:20, 3] = 255
    return Image.fromarray(array)


def mask_image(size: tuple[int, int]) -> Image.Image:
    array = np.zeros(size[::-1], dtype=np.uint8)
    array[: size[1] // 2] = 255
    return Image.fromarray(array, mode="L")


def write_lines(root: Path, lines: list[str], split: str = "train") -> None:
    (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    """Two samples in the authors' layout, with our `parsing/` folder."""
    for folder in ("images", "densepose", "parsing", "refs"):
        (tmp_path / folder).mkdir()
    lines = []
    for index, sample in enumerate(SAMPLES):
        target_image().save(tmp_path / "images" / f"person_{index}.jpg", quality=100)
        densepose_image().save(tmp_path / "densepose" / f"person_{index}.png")
        parsing_image().save(tmp_path / "parsing" / f"person_{index}.png")
        for number, (label, name) in enumerate(sample["appearance"].items()):
            reference = reference_image(10 * index + number, alpha=label not in sample["mask"])
            reference.save(tmp_path / "refs" / name)
            if label in sample["mask"]:
                mask_image(reference.size).save(tmp_path / "refs" / sample["mask"][label])
        entry = {
            "target": f"images/person_{index}.jpg",
            "appearance": {label: f"refs/{name}" for label, name in sample["appearance"].items()},
            "mask": {label: f"refs/{name}" for label, name in sample["mask"].items()},
            "structure": {"densepose": f"densepose/person_{index}.png"},
            "caption": f"person {index}",
        }
        lines.append(json.dumps(entry))
    write_lines(tmp_path, lines)
    return tmp_path


def small_clip_processor() -> CLIPImageProcessor:
    return CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})


def marker_centre(mask: torch.Tensor) -> torch.Tensor:
    rows, columns = torch.nonzero(mask, as_tuple=True)
    assert len(rows) > 0, "the marker is not in the crop"
    return torch.stack([rows.float().mean(), columns.float().mean()])


def test_item_schema_shapes_and_ranges(dataset_root):
    item = PartsDataset(dataset_root, size=SIZE, clip_processor=small_clip_processor())[0]
    height, width = SIZE
    assert set(item) == {"pixels", "pose", "ref_pixels", "ref_masks", "present", "clip_pixels", "caption", "parsing", "index"}
    assert item["pixels"].shape == (3, height, width) and -1.0 <= item["pixels"].min() < item["pixels"].max() <= 1.0
    assert item["pose"].shape == (3, height, width) and item["pose"].min() == 0.0 and item["pose"].max() <= 1.0
    assert item["ref_pixels"].shape == (6, 3, height, width) and item["ref_pixels"].abs().max() <= 1.0
    assert item["ref_masks"].shape == (6, 1, height, width) and 0.0 <= item["ref_masks"].min() <= item["ref_masks"].max() <= 1.0
    assert item["clip_pixels"].shape == (6, 3, 16, 16)
    assert item["parsing"].shape == (height, width) and item["parsing"].dtype == torch.int64
    assert set(item["parsing"].unique().tolist()) == {0, 3, MARKER_CLASS}
    assert item["caption"] == "person 0"
    assert item["index"].item() == 0  # the reference cache's key (docs/training.md)


def test_present_slots_follow_the_jsonl_and_absent_slots_are_zero(dataset_root):
    dataset = PartsDataset(dataset_root, size=SIZE, clip_processor=small_clip_processor())
    for index, sample in enumerate(SAMPLES):
        item = dataset[index]
        expected = torch.tensor([label in sample["appearance"] for label in PART_LABELS])
        assert torch.equal(item["present"], expected)
        absent = ~expected
        for key in ("ref_pixels", "ref_masks", "clip_pixels"):
            assert not item[key][absent].any()
            assert all(item[key][slot].any() for slot in torch.nonzero(expected).flatten())


def test_references_are_prepared_exactly_as_for_inference(dataset_root):
    processor = small_clip_processor()
    item = PartsDataset(dataset_root, size=SIZE, clip_processor=processor)[0]
    height, width = SIZE
    for label, name in SAMPLES[0]["appearance"].items():
        mask_name = SAMPLES[0]["mask"].get(label)
        mask = dataset_root / "refs" / mask_name if mask_name else None
        pixels, part_mask, clip_image = prepare_reference(dataset_root / "refs" / name, mask, width, height, label)
        slot = PART_LABELS.index(label)
        assert torch.equal(item["ref_pixels"][slot], pixels)
        assert torch.equal(item["ref_masks"][slot], part_mask)
        assert torch.equal(item["clip_pixels"][slot], processor(images=[clip_image], return_tensors="pt").pixel_values[0])
    # The alpha of the unmasked RGBA reference is its mask: transparent pixels are not the part.
    assert 0.0 < item["ref_masks"][PART_LABELS.index("upper body clothes")].mean() < 1.0


def test_target_pose_and_parsing_share_one_crop(dataset_root):
    cropped = PartsDataset(dataset_root, size=SIZE, crop_scale=(0.5, 0.6), seed=3)[0]
    whole = PartsDataset(dataset_root, size=SIZE, random_crop=False)[0]
    for item in (cropped, whole):
        in_parsing = item["parsing"] == MARKER_CLASS
        in_pose = (item["pose"][2] * 255).round() == MARKER_PART
        red = item["pixels"][0] - item["pixels"][1] > 1.0
        assert torch.equal(in_pose, in_parsing)
        assert torch.allclose(marker_centre(red), marker_centre(in_parsing), atol=0.75)
    # The crop zooms in: the marker covers more output pixels than in the plain resize, undistorted.
    assert (cropped["parsing"] == MARKER_CLASS).sum() > 1.5 * (whole["parsing"] == MARKER_CLASS).sum()
    rows, columns = torch.nonzero(cropped["parsing"] == MARKER_CLASS, as_tuple=True)
    assert abs((rows.max() - rows.min()) - (columns.max() - columns.min())) <= 1


@pytest.mark.parametrize("image_size", [(300, 100), (100, 300), (120, 180)])
def test_crop_boxes_keep_the_output_aspect_and_fit_the_image(image_size):
    rng = np.random.default_rng(0)
    width, height = image_size
    output_size = (32, 48)  # width, height
    largest = min(width, height * 32 / 48) * min(height, width * 48 / 32)
    for _ in range(20):
        left, top, right, bottom = random_crop_box(image_size, output_size, (0.9, 1.0), rng)
        assert 0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0
        box_width, box_height = (right - left) * width, (bottom - top) * height
        assert box_width / box_height == pytest.approx(32 / 48)
        assert 0.9 - 1e-9 <= box_width * box_height / largest <= 1.0 + 1e-9


def test_the_pose_is_resized_without_blending_part_indices(dataset_root):
    def colours(pose: torch.Tensor) -> set:
        return set(map(tuple, (pose * 255).round().int().flatten(1).T.tolist()))

    source = colours(pil_to_tensor(densepose_image()))
    assert colours(PartsDataset(dataset_root, size=SIZE, seed=5)[0]["pose"]) <= source
    blended = PartsDataset(dataset_root, size=SIZE, seed=5, pose_resample=Image.Resampling.BILINEAR)[0]["pose"]
    assert not colours(blended) <= source


def test_evaluation_items_are_plain_resizes(dataset_root):
    item = PartsDataset(dataset_root, "train", size=SIZE, random_crop=False)[0]
    size = SIZE[::-1]
    target = Image.open(dataset_root / "images" / "person_0.jpg").convert("RGB")
    assert torch.equal(item["pixels"], pil_to_tensor(target.resize(size, Image.Resampling.BICUBIC)) * 2.0 - 1.0)
    assert torch.equal(item["pose"], pil_to_tensor(densepose_image().resize(size, Image.Resampling.NEAREST)))
    parsing = np.asarray(parsing_image().resize(size, Image.Resampling.NEAREST), dtype=np.int64)
    assert torch.equal(item["parsing"], torch.from_numpy(parsing))


def test_crops_are_seeded_per_item_and_epoch(dataset_root):
    def pixels(seed: int, epoch: int = 0) -> torch.Tensor:
        dataset = PartsDataset(dataset_root, size=SIZE, crop_scale=(0.5, 0.6), seed=seed)
        dataset.set_epoch(epoch)
        return dataset[0]["pixels"]

    assert torch.equal(pixels(seed=7), pixels(seed=7))
    assert not torch.equal(pixels(seed=7), pixels(seed=8))
    assert not torch.equal(pixels(seed=7), pixels(seed=7, epoch=1))
    keyed = PartsDataset(dataset_root, size=SIZE, crop_scale=(0.5, 0.6), seed=7)
    assert torch.equal(keyed[(0, 1)]["pixels"], pixels(seed=7, epoch=1))


def test_collate_makes_a_batch(dataset_root):
    dataset = PartsDataset(dataset_root, size=SIZE, clip_processor=small_clip_processor())
    batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate)))
    assert batch["caption"] == ["person 0", "person 1"]
    assert batch["pixels"].shape == (2, 3, *SIZE)
    assert batch["ref_pixels"].shape == (2, 6, 3, *SIZE)
    assert batch["present"].shape == (2, 6) and batch["present"].dtype == torch.bool
    assert batch["clip_pixels"].shape == (2, 6, 3, 16, 16)
    assert batch["parsing"].shape == (2, *SIZE)


def test_parsing_is_optional(dataset_root):
    for path in (dataset_root / "parsing").iterdir():
        path.unlink()
    (dataset_root / "parsing").rmdir()
    item = PartsDataset(dataset_root, size=SIZE)[0]
    assert "parsing" not in item and "clip_pixels" not in item


def line(root: Path, number: int) -> str:
    return re.escape(f"{root / 'train.jsonl'}, line {number}")


def entry_of(root: Path, index: int = 0, **changes) -> str:
    entry = json.loads((root / "train.jsonl").read_text().splitlines()[index])
    entry.update(changes)
    return json.dumps(entry)


def test_a_missing_file_names_the_line_and_the_file(dataset_root):
    broken = entry_of(dataset_root, appearance={"face": "refs/nowhere.png"}, mask={})
    write_lines(dataset_root, [entry_of(dataset_root), "", broken])
    dataset = PartsDataset(dataset_root, size=SIZE)
    with pytest.raises(ValueError, match=line(dataset_root, 3) + ".*no file.*nowhere.png"):
        dataset[1]


def test_an_unreadable_image_names_the_line_and_the_file(dataset_root):
    (dataset_root / "densepose" / "person_0.png").write_text("not an image")
    with pytest.raises(ValueError, match=line(dataset_root, 1) + ".*person_0.png.*not a readable image"):
        PartsDataset(dataset_root, size=SIZE)[0]


def test_an_unknown_label_names_the_line(dataset_root):
    write_lines(dataset_root, [entry_of(dataset_root), entry_of(dataset_root, appearance={"hat": "refs/face_0.png"})])
    with pytest.raises(ValueError, match=line(dataset_root, 2) + ".*Unknown part label.*'hat'"):
        PartsDataset(dataset_root, size=SIZE)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"mask": {"shoes": "refs/face_0_mask.png"}}, r"mask\(s\) for \['shoes'\] but no appearance image"),
        ({"structure": {"openpose": "densepose/person_0.png"}}, "no 'densepose' map"),
        ({"caption": None}, "'caption' must be a text"),
        ({"appearance": {}}, "No parts given"),
    ],
)
def test_malformed_samples_are_refused_with_their_line(dataset_root, changes, message):
    write_lines(dataset_root, [entry_of(dataset_root, **changes)])
    with pytest.raises(ValueError, match=line(dataset_root, 1) + ".*" + message):
        PartsDataset(dataset_root, size=SIZE)


def test_a_parsing_map_with_an_unknown_class_is_refused(dataset_root):
    array = np.asarray(parsing_image()).copy()
    array[0, 0] = len(PARSING_CLASSES)
    Image.fromarray(array, mode="L").save(dataset_root / "parsing" / "person_0.png")
    with pytest.raises(ValueError, match=line(dataset_root, 1) + ".*parsing/person_0.png.*holds class 8"):
        PartsDataset(dataset_root, size=SIZE)[0]


def test_bad_settings_are_refused(dataset_root):
    with pytest.raises(ValueError, match="multiples of 8"):
        PartsDataset(dataset_root, size=(50, 32))
    with pytest.raises(ValueError, match="crop_scale"):
        PartsDataset(dataset_root, crop_scale=(0.9, 1.1))


def test_without_references_only_the_target_side_is_read(dataset_root: Path) -> None:
    full = PartsDataset(dataset_root, size=SIZE, seed=1)[0]
    bare = PartsDataset(dataset_root, size=SIZE, seed=1, with_references=False)[0]
    assert not {"ref_pixels", "ref_masks", "present"} & set(bare)
    assert torch.equal(full["pixels"], bare["pixels"]) and torch.equal(full["pose"], bare["pose"])
