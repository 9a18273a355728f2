"""`python -m parts2whole INPUT.json|INPUT.jsonl --out DIR`: generate from the authors' input format.

An input is a generation request in its JSON form (parts2whole.request): the authors' `input_dict`
(`appearance`, `mask`, `structure`: image paths relative to the input file) plus optional settings. A `.jsonl` file holds one
input a line and loads the model once. Each image is written with, beside it, the settings that
made it, in the same format, so `python -m parts2whole OUT/NAME.json` makes it again.

Under `accelerate launch` each process loads the model on its own device and makes every
N-th line; the results are the same files a single process writes.
"""

import argparse
import sys
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import gather_object, parse_flag_from_env

from .jobs import generate, read_requests, schedulers_for, write_results
from .request import fast_settings
from .runtime import (
    OUT_OF_MEMORY_HINT,
    add_model_arguments,
    default_device,
    load_pipeline,
    mini_notice,
    model_defaults,
    model_folder,
    parse_dtype,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m parts2whole", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="an input .json, or a .jsonl with one input a line")
    parser.add_argument("--out", type=Path, required=True, help="folder for the images and their settings")
    parser.add_argument(
        "--fast", action="store_true", help="the fast preset (DPM++ 2M, 2/5 of the steps) for inputs that set no scheduler and steps"
    )
    add_model_arguments(
        parser, device_help="cuda, cuda:1, cpu, ... (default: cuda if available; under accelerate launch, the process's own device)"
    )
    return parser.parse_args(argv)


def process_and_device(asked: str | None) -> tuple[PartialState, str]:
    """This process among those a launcher started (the only one otherwise) and the device it runs on.

    PartialState has to be told to use the CPU where there is no GPU: otherwise it takes each of
    several launched processes for the only one, and every process would make every line.
    """
    on_cpu = parse_flag_from_env("ACCELERATE_USE_CPU")  # accelerate launch --cpu
    state = PartialState(cpu=on_cpu or not torch.cuda.is_available())
    if asked:
        return state, asked
    return state, str(state.device) if state.use_distributed or on_cpu else default_device()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state, device = process_and_device(args.device)
    try:
        folder = model_folder(args.weights)
        defaults = model_defaults(folder)
        inputs = read_requests(args.input, {**defaults, **fast_settings(defaults)} if args.fast else defaults)
        pipe = load_pipeline(args.weights, device, parse_dtype(args.dtype, device), args.low_vram)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    notice = mini_notice(folder)
    if notice and state.is_main_process:
        print(notice, file=sys.stderr)
    schedulers = schedulers_for(pipe)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    # Every process reads all lines and makes every num_processes-th one; a result is named after
    # its line's number, so the files are the same whichever process makes them.
    for number in range(state.process_index + 1, len(inputs) + 1, state.num_processes):
        request = inputs[number - 1]
        stem = args.input.stem if len(inputs) == 1 else f"{args.input.stem}_{number:04d}"
        try:
            images = generate(pipe, request, schedulers)
        except (ValueError, torch.cuda.OutOfMemoryError) as error:
            message = OUT_OF_MEMORY_HINT if isinstance(error, torch.cuda.OutOfMemoryError) else error
            print(f"error in input {number}: {message}", file=sys.stderr)
            torch.cuda.empty_cache()
            failures += 1
            continue
        for path in write_results(images, request, args.out, stem):
            # one write per line: under accelerate launch every process shares this stdout, and print's
            # separate write of the newline let two processes' lines run together
            sys.stdout.write(f"{path}\n")
            sys.stdout.flush()
    failures = sum(gather_object([failures]))  # also waits for every process to finish its lines
    if len(inputs) > 1 and state.is_main_process:
        made = len(inputs) - failures
        by = f" by {state.num_processes} processes" if state.num_processes > 1 else ""
        print(f"{made} of {len(inputs)} inputs made{by}.", file=sys.stderr)
    # the launcher stops every process as soon as one exits with an error: not before the summary
    state.wait_for_everyone()
    return 1 if failures else 0
