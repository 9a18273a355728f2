"""Pinned outputs, the diffusers way: the tiny seeded checkpoint's final latents (all of them, 4 x 8 x 6)
and an image slice, recorded once for a handful of settings and held to a tight tolerance. Any
change to what a generation computes (an order, a mask, the guidance, a scheduler's use) moves them.

Refresh them with

    PYTHONPATH=. python tests/test_pinned_outputs.py --record

only when a change is MEANT to change the numbers (a deliberate fix of the method, new tiny
components, a new diffusers whose scheduler or UNet computes differently) and after the other tests
have shown the new numbers are right. A refresh to make a red test green hides the bug it found.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from parts2whole import Parts2WholePipeline
from parts2whole.testing.inputs import call_kwargs
from parts2whole.testing.tiny_models import write_released_checkpoint

PINNED_FILE = Path(__file__).with_name("pinned_outputs.json")
TOLERANCE = 2e-4
"""Float32 on the CPU: the same code on other CPUs or thread counts moves the 4th decimal at most."""

SETTINGS: dict[str, dict] = {
    "1 part, no mask, guidance 7.5, DDIM": dict(count=1, with_masks=False),
    "6 parts, masks, guidance 7.5, DDIM": dict(count=6),
    "6 parts, no masks, guidance 7.5, DDIM": dict(count=6, with_masks=False),
    "2 parts, masks, guidance 1 (no CFG), DDIM": dict(count=2, guidance_scale=1.0),
    "2 parts, masks, guidance 3, DDIM": dict(count=2, guidance_scale=3.0),
    "2 parts, masks, guidance 7.5, DDIM": dict(count=2),
    "2 parts, masks, guidance 7.5, DPM++ 2M": dict(count=2, scheduler="dpm++"),
}
IMAGE_SETTING = "6 parts, masks, guidance 7.5, DDIM"


def generate(pipe: Parts2WholePipeline, setting: dict, output_type: str) -> np.ndarray:
    setting = dict(setting)
    if setting.pop("scheduler", None) == "dpm++":
        setting["scheduler"] = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    return np.asarray(pipe(**call_kwargs(num_inference_steps=3, output_type=output_type, **setting)).images)


def image_slice(image: np.ndarray) -> np.ndarray:
    """The bottom-right 3 x 3 pixels of the last channel, as diffusers' tests pin."""
    return image[0, -3:, -3:, -1].flatten()


def record(pipe: Parts2WholePipeline) -> dict:
    latents = {name: generate(pipe, setting, "latent").round(6).tolist() for name, setting in SETTINGS.items()}
    image = image_slice(generate(pipe, SETTINGS[IMAGE_SETTING], "np")).round(6).tolist()
    return {"latents": latents, "image_slice": {IMAGE_SETTING: image}}


@pytest.fixture(scope="module")
def pinned() -> dict:
    return json.loads(PINNED_FILE.read_text())


def test_every_setting_is_pinned_and_the_settings_give_different_outputs(pinned) -> None:
    assert sorted(pinned["latents"]) == sorted(SETTINGS)
    values = [np.asarray(latents) for latents in pinned["latents"].values()]
    for i, first in enumerate(values):
        for second in values[i + 1 :]:
            assert np.abs(first - second).max() > 1e-2  # each setting's pin is sensitive to it


@pytest.mark.parametrize("name", list(SETTINGS))
def test_latents_match_their_pins(pipe, pinned, name) -> None:
    np.testing.assert_allclose(generate(pipe, SETTINGS[name], "latent"), np.asarray(pinned["latents"][name]), atol=TOLERANCE, rtol=0)


def test_image_slice_matches_its_pin(pipe, pinned) -> None:
    expected = np.asarray(pinned["image_slice"][IMAGE_SETTING])
    np.testing.assert_allclose(image_slice(generate(pipe, SETTINGS[IMAGE_SETTING], "np")), expected, atol=TOLERANCE, rtol=0)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as folder:
        write_released_checkpoint(Path(folder) / "parts2whole")
        pipeline = Parts2WholePipeline.from_pretrained(Path(folder) / "parts2whole")
        pipeline.set_progress_bar_config(disable=True)
        torch.set_grad_enabled(False)
        PINNED_FILE.write_text(json.dumps(record(pipeline), indent=1) + "\n")
    print(f"Wrote {PINNED_FILE}.")
