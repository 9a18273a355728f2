"""`python -m parts2whole INPUT.json|INPUT.jsonl --out DIR`: generate from the authors' input format.

An input is the authors' `input_dict` (`appearance`, `mask`, `structure`: image paths relative to
the input file) plus optional settings (see `parts2whole.jobs.SETTINGS`). A `.jsonl` file holds one
input a line and loads the model once. Each image is written with, beside it, the settings that
made it, in the same format, so `python -m parts2whole OUT/NAME.json` makes it again.
"""

import argparse
import sys
from pathlib import Path

import torch

from .jobs import generate, read_inputs, schedulers_for, write_results
from .runtime import OUT_OF_MEMORY_HINT, default_device, load_pipeline, parse_dtype
from .weights import DEFAULT_WEIGHTS_DIR


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
    schedulers = schedulers_for(pipe)
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
