"""The mini model shipped in pretrained_weights/parts2whole-mini/ (docs/mini_model.md): complete,
small, safetensors only, and drawing the example the demo opens with, on the CPU, where the
released weights are absent."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from parts2whole import runtime
from parts2whole.cli import main
from parts2whole.densepose import background_mask
from parts2whole.evaluation.segmentation import person_mask
from parts2whole.loading import missing_checkpoint_parts
from parts2whole.metrics import delta_e, iou, mean_lab

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "pretrained_weights" / "parts2whole-mini"
EXAMPLE = REPO / "examples" / "top_and_trousers"
MAX_BYTES = 25 * 1024 * 1024
TORSO_PARTS = (1, 2)
"""DensePose parts 1 and 2: the torso's back and front."""
CHEST_FRACTION = 0.6
"""The top of the torso that only the top covers: DensePose's torso reaches down to the hips, where
the trousers begin."""


def weight_files() -> list[Path]:
    return sorted(path for path in MINI.rglob("*") if path.suffix in {".safetensors", ".pth", ".bin", ".ckpt"})


def test_the_shipped_model_is_complete_small_and_safetensors_only() -> None:
    assert missing_checkpoint_parts(MINI) == []
    assert sum(path.stat().st_size for path in MINI.rglob("*") if path.is_file()) <= MAX_BYTES
    assert weight_files(), "no weight files"
    for path in weight_files():
        assert load_file(path), f"{path} is empty"  # raises on a pickle: only safetensors ship
    defaults = runtime.model_defaults(MINI)
    assert defaults["height"] >= 128 and defaults["width"] >= 96
    assert (MINI / "README.md").is_file()


@pytest.fixture(scope="module")
def example_drawn(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, dict]:
    """The example, drawn once by the command line with no released weights (the mini model's
    fallback); its DensePose map at the drawing's size; the model's defaults."""
    tmp_path = tmp_path_factory.mktemp("mini")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(runtime, "MINI_MODEL_DIR", MINI.resolve())
        out = tmp_path / "out"
        arguments = [str(EXAMPLE / "example.json"), "--out", str(out), "--weights", str(tmp_path / "empty"), "--device", "cpu"]
        assert main(arguments) == 0
    image = np.asarray(Image.open(out / "example.png").convert("RGB"))
    pose = np.asarray(Image.open(EXAMPLE / "densepose.png").convert("RGB").resize(image.shape[1::-1], Image.NEAREST))
    return image, pose, runtime.model_defaults(MINI)


def test_the_example_is_drawn_at_the_models_size_in_the_poses_silhouette(example_drawn) -> None:
    image, pose, defaults = example_drawn
    assert image.shape[:2] == (defaults["height"], defaults["width"])
    assert iou(person_mask(image), ~background_mask(pose)) > 0.7


def test_the_chest_takes_the_tops_colour_not_the_trousers(example_drawn) -> None:
    image, pose, _ = example_drawn
    chest = np.isin(pose[..., 2], TORSO_PARTS) & ~background_mask(pose)
    rows = np.flatnonzero(chest.any(axis=1))
    chest[rows[0] + int(CHEST_FRACTION * (rows[-1] - rows[0] + 1)) :] = False
    colour = mean_lab(image, chest)

    def reference_colour(part: str) -> np.ndarray:
        rgb = np.asarray(Image.open(EXAMPLE / f"{part}.png").convert("RGB"))
        mask = np.asarray(Image.open(EXAMPLE / f"{part}_mask.png").convert("L")) > 127
        return mean_lab(rgb, mask)

    top, trousers = reference_colour("upper_body_clothes"), reference_colour("lower_body_clothes")
    assert delta_e(colour, top) < 0.5 * delta_e(colour, trousers)
