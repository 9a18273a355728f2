"""`python -m parts2whole INPUT.json|INPUT.jsonl --out DIR`: generate from the authors' input format.

An input is the authors' `input_dict` (`appearance`, `mask`, `structure`: image paths relative to
the input file) plus optional settings (SETTINGS below). A `.jsonl` file holds one input a line and
loads the model once. Each image is written with, beside it, the settings that made it, in the same
format, so `python -m parts2whole OUT/NAME.json` makes it again.
"""

import argparse
import json
import os
import random
import sys
from pathlib import Path

import torch

from .runtime import OUT_OF_MEMORY_HINT, SCHEDULERS, default_device, load_pipeline, make_scheduler, parse_dtype
from .weights import DEFAULT_WEIGHTS_DIR

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
"""Every optional setting of an input and its default (seed None: a random one, recorded)."""


def read_inputs(path: Path) -> list[dict]:
    """The inputs of a .json (one) or .jsonl (one a line) file, with image paths made absolute."""
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
        inputs.append(check_input(entry, path.parent, where))
    if not inputs:
        raise ValueError(f"{path} holds no input.")
    return inputs


def check_input(entry: object, base: Path, where: str) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: an input must be a JSON object.")
    unknown = sorted(set(entry) - set(IMAGE_GROUPS) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; the keys are {list(IMAGE_GROUPS) + list(SETTINGS)}.")
    resolved = {**SETTINGS, **entry}
    if resolved["scheduler"] not in SCHEDULERS:
        raise ValueError(f"{where}: unknown scheduler {resolved['scheduler']!r}; choose one of {list(SCHEDULERS)}.")
    for group in IMAGE_GROUPS:
        paths = entry.get(group) or {}
        if not isinstance(paths, dict) or not all(isinstance(p, str) for p in paths.values()):
            raise ValueError(f"{where}: {group!r} must map names to image paths.")
        resolved[group] = {name: str((base / p).resolve()) for name, p in paths.items()}
    if resolved["seed"] is None:
        resolved["seed"] = random.randrange(2**31)
    return resolved


def relative_settings(settings: dict, folder: Path) -> dict:
    """`settings` with its image paths relative to `folder`, where the settings file is written."""
    relative = {group: {name: os.path.relpath(p, folder) for name, p in settings[group].items()} for group in IMAGE_GROUPS}
    relative.update({key: value for key, value in settings.items() if key not in IMAGE_GROUPS})
    return relative


def generate(pipe, settings: dict, schedulers: dict) -> list:
    """The images of one input; image i is made from seed + i, so each can be made again alone."""
    pipe.scheduler = schedulers[settings["scheduler"]]
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
    ).images


def write_results(images: list, settings: dict, out: Path, stem: str) -> list[Path]:
    written = []
    for index, image in enumerate(images):
        name = f"{stem}_{index}" if len(images) > 1 else stem
        image.save(out / f"{name}.png")
        used = relative_settings({**settings, "seed": settings["seed"] + index, "num_images": 1}, out)
        (out / f"{name}.json").write_text(json.dumps(used, indent=2) + "\n")
        written.append(out / f"{name}.png")
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m parts2whole", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="an input .json, or a .jsonl with one input a line")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images and their settings")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS_DIR), help="weights folder (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"], help="default: float16 on GPU")
    parser.add_argument("--low-vram", action="store_true", help="keep each model on the CPU until it runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        inputs = read_inputs(args.input)
        device = args.device or default_device()
        pipe = load_pipeline(args.weights, device, parse_dtype(args.dtype, device), args.low_vram)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    schedulers = {name: make_scheduler(name, pipe.scheduler.config) for name in SCHEDULERS}
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for number, settings in enumerate(inputs, start=1):
        stem = args.input.stem if len(inputs) == 1 else f"{args.input.stem}_{number:04d}"
        try:
            images = generate(pipe, settings, schedulers)
        except (ValueError, torch.cuda.OutOfMemoryError) as error:
            message = OUT_OF_MEMORY_HINT if isinstance(error, torch.cuda.OutOfMemoryError) else error
            print(f"error in input {number}: {message}", file=sys.stderr)
            torch.cuda.empty_cache()
            failures += 1
            continue
        for path in write_results(images, settings, args.out, stem):
            print(path)
    return 1 if failures else 0
