"""Requests read from the command line's files, and how one request drives the pipeline."""

import json
import re
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from PIL import Image

from parts2whole.jobs import generate, read_requests, schedulers_for
from parts2whole.request import GenerationRequest
from parts2whole.testing.inputs import densepose_image, noise_image


@pytest.fixture
def entry(tmp_path) -> dict:
    noise_image(0, (16, 16)).save(tmp_path / "face.png")
    densepose_image().save(tmp_path / "pose.png")
    return {"appearance": {"face": "face.png"}, "structure": {"densepose": "pose.png"}, "height": 64, "width": 48}


def test_requests_are_read_with_paths_made_absolute_defaults_applied_and_seeds_drawn(tmp_path, entry) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(entry) + "\n\n" + json.dumps({**entry, "seed": 5, "steps": 3}) + "\n")
    drawn, given = read_requests(path, defaults={"steps": 9, "guidance_scale": 2.0})
    assert drawn.appearance == {"face": str(tmp_path / "face.png")} and drawn.structure == {"densepose": str(tmp_path / "pose.png")}
    assert (drawn.steps, drawn.guidance_scale, given.steps, given.seed) == (9, 2.0, 3, 5)
    assert isinstance(drawn.seed, int)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("batch.jsonl", "ENTRY\n\nnot json\n", r"{path}, line 3: Not valid JSON"),  # the file's line, blank ones counted
        ("one.json", "not json", r"{path}: Not valid JSON"),
        ("empty.jsonl", "\n  \n", r"{path} holds no input\."),
        ("missing.json", None, r"Cannot read {path}: No such file or directory\."),
    ],
)
def test_a_bad_file_is_named_with_the_line_at_fault(tmp_path, entry, name, text, message) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text.replace("ENTRY", json.dumps(entry)))
    with pytest.raises(ValueError, match="^" + message.format(path=re.escape(str(path)))):
        read_requests(path)


class RecordingPipeline:
    """Stands in for Parts2WholePipeline: records what it is called with and calls back each step."""

    def __init__(self) -> None:
        self.scheduler = DDIMScheduler()
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> SimpleNamespace:
        self.calls.append(kwargs)
        if kwargs["callback_on_step_end"]:
            for step in range(kwargs["num_inference_steps"]):
                kwargs["callback_on_step_end"](self, step, 999 - step, {})
        return SimpleNamespace(images=[Image.new("RGB", (8, 8))] * kwargs["num_images_per_prompt"])


def test_every_setting_of_the_request_reaches_the_pipeline(entry, tmp_path) -> None:
    settings = {"prompt": "a walk", "negative_prompt": "blur", "seed": 40, "steps": 3, "guidance_scale": 2.5, "num_images": 2}
    request = GenerationRequest.from_dict({**entry, **settings, "mask": {"face": "face.png"}}, tmp_path)
    pipe, steps = RecordingPipeline(), []
    assert len(generate(pipe, request, on_step=lambda done, total: steps.append((done, total)))) == 2
    (call,) = pipe.calls
    assert (call["prompt"], call["negative_prompt"], call["guidance_scale"], call["num_inference_steps"]) == ("a walk", "blur", 2.5, 3)
    assert (call["height"], call["width"], call["num_images_per_prompt"]) == (64, 48, 2)
    assert call["appearance"] == request.appearance and call["mask"] == request.mask and call["structure"] == request.structure
    assert [generator.initial_seed() for generator in call["generator"]] == [40, 41]
    assert all(generator.device == torch.device("cpu") for generator in call["generator"])
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_no_mask_is_none_and_no_progress_callback_without_on_step(entry, tmp_path) -> None:
    pipe = RecordingPipeline()
    generate(pipe, GenerationRequest.from_dict({**entry, "seed": 1}, tmp_path))
    assert pipe.calls[0]["mask"] is None and pipe.calls[0]["callback_on_step_end"] is None


def test_the_scheduler_is_the_requests_made_once_or_made_from_the_checkpoints_config(entry, tmp_path) -> None:
    pipe = RecordingPipeline()
    pipe.scheduler = DDIMScheduler(num_train_timesteps=500)
    request = GenerationRequest.from_dict({**entry, "seed": 1, "scheduler": "dpm++2m"}, tmp_path)
    schedulers = schedulers_for(pipe)
    generate(pipe, request, schedulers)
    generate(pipe, request)
    made_once, made_now = (call["scheduler"] for call in pipe.calls)
    assert made_once is schedulers["dpm++2m"]
    assert isinstance(made_now, DPMSolverMultistepScheduler) and made_now is not made_once
    assert made_now.config.num_train_timesteps == 500 and made_now.config.algorithm_type == "dpmsolver++"


def test_a_request_without_a_seed_is_refused_with_what_to_do(entry, tmp_path) -> None:
    request = GenerationRequest.from_dict(entry, tmp_path)
    said = "The request has no seed: call request.with_seed() first, so that the seed used can be written."
    with pytest.raises(ValueError, match=f"^{re.escape(said)}$"):
        generate(RecordingPipeline(), request)
