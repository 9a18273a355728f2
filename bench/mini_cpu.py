"""Seconds per image of a small model on the CPU (docs/PERFORMANCE.md): its default settings against
the fast preset (and the released model's 50 DDIM steps against its fast preset's 20 DPM++ 2M
steps), in float32 and under bfloat16 autocast.

    python bench/mini_cpu.py --weights pretrained_weights/parts2whole-mini [--repeats 5]

The example "top_and_trousers" at the model's native size (its defaults.json), one image per call,
after one warm-up call per setting.
"""

import argparse
import contextlib
import json
import platform
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

from parts2whole.jobs import generate, read_requests
from parts2whole.request import fast_settings
from parts2whole.runtime import load_pipeline, model_defaults, model_folder

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "top_and_trousers" / "example.json"


def seconds_per_image(pipe, request, repeats: int, bf16: bool) -> float:
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        generate(pipe, request)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            generate(pipe, request)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    defaults = model_defaults(model_folder(args.weights))
    (request,) = read_requests(EXAMPLE, defaults)
    request = replace(request, seed=0, num_images=1)
    pipe = load_pipeline(args.weights, "cpu", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    presets = {
        "default": {},
        "fast": fast_settings(defaults),
        "released default (DDIM 50)": {"scheduler": "ddim", "steps": 50},
        "released fast (DPM++ 2M 20)": fast_settings({"steps": 50}),
    }
    rows = []
    for preset, changes in presets.items():
        chosen = replace(request, **changes)
        for bf16 in (False, True):
            seconds = seconds_per_image(pipe, chosen, args.repeats, bf16)
            rows.append(
                {
                    "preset": preset,
                    "scheduler": chosen.scheduler,
                    "steps": chosen.steps,
                    "bf16_autocast": bf16,
                    "seconds_per_image": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    report = {
        "command": f"python bench/mini_cpu.py --weights {args.weights} --repeats {args.repeats}",
        "date": date.today().isoformat(),
        "device": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "size": f"{request.height}x{request.width}",
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
