"""A generation described in the command line's input format: read it, run it, write its results.

An input is the authors' `input_dict` (`appearance`, `mask`, `structure`: image paths relative to
the input file) plus optional settings (SETTINGS below). Each image is written with, beside it, the
settings that made it in the same format, so that the settings of any result make it again.
"""

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from .labels import order_labels
from .pipeline import Parts2WholePipeline
from .runtime import SCHEDULERS, make_scheduler

IMAGE_GROUPS = ("appearance", "mask", "structure")
SETTINGS = {
    "prompt": "",
    "negative_prompt": "",
    "seed": None,
    "height": 768,
    "width": 512,
    "steps": 50,
    "guidance_scale": 7.5,
    "num_images": 1,
    "scheduler": "ddim",
}
"""Every optional setting of an input and its default.

Seed None draws a random seed per input on each run (with one process or several), so only the
settings written beside its image make that image again.
"""


def read_inputs(path: Path, defaults: dict | None = None) -> list[dict]:
    """The inputs of a .json (one) or .jsonl (one a line) file, with image paths made absolute.

    `defaults` replace SETTINGS' defaults (a model's own defaults.json)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}.") from None
    lines = [line for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else [text]
    inputs = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}" + (f", line {number}" if path.suffix == ".jsonl" else "")
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno}).") from None
        inputs.append(check_input(entry, path.parent, where, defaults))
    if not inputs:
        raise ValueError(f"{path} holds no input.")
    return inputs


def check_input(entry: object, base: Path, where: str, defaults: dict | None = None) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: an input must be a JSON object.")
    unknown = sorted(set(entry) - set(IMAGE_GROUPS) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; the keys are {list(IMAGE_GROUPS) + list(SETTINGS)}.")
    resolved = {**SETTINGS, **(defaults or {}), **entry}
    if resolved["scheduler"] not in SCHEDULERS:
        raise ValueError(f"{where}: unknown scheduler {resolved['scheduler']!r}; choose one of {list(SCHEDULERS)}.")
    for group in IMAGE_GROUPS:
        paths = entry.get(group) or {}
        if not isinstance(paths, dict) or not all(isinstance(p, str) for p in paths.values()):
            raise ValueError(f"{where}: {group!r} must map names to image paths.")
        resolved[group] = {name: str((base / p).resolve()) for name, p in paths.items()}
    try:
        order_labels(resolved["appearance"])  # the pipeline also takes no parts (for ablations); an input may not
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if resolved["seed"] is None:
        resolved["seed"] = random.randrange(2**31)
    return resolved


def relative_settings(settings: dict, folder: Path) -> dict:
    """`settings` with its image paths relative to `folder`, where the settings file is written."""
    relative = {group: {name: os.path.relpath(p, folder) for name, p in settings[group].items()} for group in IMAGE_GROUPS}
    relative.update({key: value for key, value in settings.items() if key not in IMAGE_GROUPS})
    return relative


def schedulers_for(pipe: Parts2WholePipeline) -> dict:
    """One scheduler of each kind in SCHEDULERS, made from the checkpoint's scheduler config."""
    return {name: make_scheduler(name, pipe.scheduler.config) for name in SCHEDULERS}


def generate(
    pipe: Parts2WholePipeline, settings: dict, schedulers: dict, on_step: Callable[[int, int], None] | None = None
) -> list[Image.Image]:
    """The images of one input; image i is made from seed + i, so each can be made again alone.

    `on_step(done, total)` is called after each denoising step (the demo's progress bar; an
    exception it raises stops the generation there).
    """

    def report(pipeline: Parts2WholePipeline, step: int, timestep, tensors: dict) -> dict:
        on_step(step + 1, settings["steps"])
        return tensors

    generators = [torch.Generator("cpu").manual_seed(settings["seed"] + i) for i in range(settings["num_images"])]
    return pipe(
        appearance=settings["appearance"],
        mask=settings["mask"] or None,
        structure=settings["structure"],
        prompt=settings["prompt"],
        negative_prompt=settings["negative_prompt"],
        height=settings["height"],
        width=settings["width"],
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance_scale"],
        num_images_per_prompt=settings["num_images"],
        generator=generators,
        callback_on_step_end=report if on_step else None,
        scheduler=schedulers[settings["scheduler"]],
    ).images


def write_results(images: list[Image.Image], settings: dict, out: Path, stem: str) -> list[Path]:
    """Each image as OUT/STEM[_i].png with its settings as OUT/STEM[_i].json; returns the images' paths."""
    written = []
    for index, image in enumerate(images):
        name = f"{stem}_{index}" if len(images) > 1 else stem
        image.save(out / f"{name}.png")
        used = relative_settings({**settings, "seed": settings["seed"] + index, "num_images": 1}, out)
        (out / f"{name}.json").write_text(json.dumps(used, indent=2) + "\n")
        written.append(out / f"{name}.png")
    return written
