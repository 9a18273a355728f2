"""This pipeline against the released script's cost structure and against a plain Stable Diffusion
loop, in one process on one device (docs/PERFORMANCE.md).

    python bench/compare.py --device cuda --dtype float16 --steps 50 --out docs/logs/compare-h100.json
    python bench/compare.py --device cpu --dtype float32 --height 128 --width 96 --steps 4 --parts 1 2

Components: Stable Diffusion 1.5's and CLIP ViT-L/14's shapes with random weights (bench/full_size.py;
no download). For 1, 2 and 6 parts, each reference masked so that about three quarters of its tokens
are hidden (as SegFormer's part masks do on real photos), three ways to make the same image:

- this: `Parts2WholePipeline` as shipped;
- released: the same pipeline with the authors' cost structure: the reference tokens are queries
  too, in both rows, the unconditional rows recomputed plainly; every reference token (masked ones
  included) projected to keys and values at every step; the unconditional appearance-encoder pass
  computed and thrown away. It computes the same image;
- plain: diffusers' StableDiffusionPipeline on the same UNet, VAE and text encoder, same steps and
  guidance, no references (the floor).

Each: seconds per image, time before the first denoising step, ms per step, peak GPU memory (the
medians of --repeats rounds, the variants interleaved: one timed generation each was seen to vary by
up to a third on an H100); and the largest difference between this and released's images. With
--channels-last, also this pipeline with its UNets' and VAE's weights channels-last (measured on and
off); with --breakdown, this pipeline's step taken apart (timing only, other images): its denoising
UNet's self-attention made plain (the references' share of a step, by difference) and its
cross-attention given the text tokens only (the image tokens' share); with --memory, this pipeline's
placements for 6 parts: model offload, sequential offload, VAE slicing and tiling.
"""

import argparse
import copy
import json
import platform
import time
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path

import numpy as np
import torch
from attention_cost import ConcatenatingSelfAttention, synchronize
from diffusers import StableDiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.utils import logging as diffusers_logging
from full_size import APPEARANCE, EXAMPLES, full_size_pipeline
from PIL import Image

from parts2whole import Parts2WholePipeline
from parts2whole.attention import DecoupledCrossAttnProcessor, SharedSelfAttnProcessor
from parts2whole.reference import ReferenceBank, active_bank, capture_reference_features

HIDDEN_SHARE = 0.75
"""The share of each reference's pixels (and so tokens) its mask hides."""


def part_masks(appearance: dict[str, Path]) -> dict[str, Image.Image]:
    """A centred box on each reference keeping 1 - HIDDEN_SHARE of its area."""
    masks = {}
    for label, path in appearance.items():
        width, height = Image.open(path).size
        side = (1.0 - HIDDEN_SHARE) ** 0.5
        box = np.zeros((height, width), np.uint8)
        top, left = round(height * (1 - side) / 2), round(width * (1 - side) / 2)
        box[top : top + round(height * side), left : left + round(width * side)] = 255
        masks[label] = Image.fromarray(box, mode="L")
    return masks


class StepClock:
    """Times of the denoising UNet's first call and of each step's end (synchronised)."""

    def __init__(self, unet: torch.nn.Module, device: torch.device) -> None:
        self.device, self.first_call, self.step_ends = device, None, []
        self.handle = unet.register_forward_pre_hook(self.unet_called)

    def unet_called(self, module, args) -> None:
        if self.first_call is None:
            synchronize(self.device)
            self.first_call = time.perf_counter()

    def step_ended(self, pipeline, step, timestep, tensors) -> dict:
        synchronize(self.device)
        self.step_ends.append(time.perf_counter())
        return tensors


def generation_call(appearance: dict[str, Path], args: argparse.Namespace) -> dict:
    """The pipeline's arguments for `appearance`, each reference masked, at the benchmark's size."""
    return dict(
        appearance=appearance, mask=part_masks(appearance), structure={"densepose": EXAMPLES / "poses" / "standing.png"},
        prompt="a person", height=args.height, width=args.width, guidance_scale=7.5,
    )  # fmt: skip


def warmed_and_timed(pipe, unet: torch.nn.Module, device: torch.device, call: dict, steps: int) -> tuple[np.ndarray, dict]:
    """A 2-step warm-up, then `timed_call` with seed 0."""
    pipe(**call, num_inference_steps=2)
    return timed_call(pipe, unet, device, {**call, "generator": torch.Generator().manual_seed(0)}, steps)


def timed_call(pipe, unet: torch.nn.Module, device: torch.device, call: dict, steps: int) -> tuple[np.ndarray, dict]:
    """One generation: its image and its timings (seconds, before the first step, ms per step, peak GiB)."""
    clock = StepClock(unet, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    synchronize(device)
    start = time.perf_counter()
    try:
        images = pipe(**call, num_inference_steps=steps, output_type="np", callback_on_step_end=clock.step_ended).images
        synchronize(device)
    finally:
        clock.handle.remove()
    end = time.perf_counter()
    return images, {
        "seconds_per_image": end - start,
        "seconds_before_first_step": clock.first_call - start,
        "ms_per_step": (clock.step_ends[-1] - clock.first_call) / steps * 1000,
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }


@contextmanager
def released_cost_structure(pipe: Parts2WholePipeline):
    """The authors' costs on this pipeline: their self-attention (reference queries in both rows,
    all tokens projected every step) and a discarded unconditional appearance-encoder pass."""
    installed = dict(pipe.unet.attn_processors)
    released = {}
    for key, processor in installed.items():
        if isinstance(processor, SharedSelfAttnProcessor):
            released[key] = ReleasedSelfAttention(processor.name)
    pipe.unet.set_attn_processor({**installed, **released})

    def unconditional_pass(module, args, kwargs) -> None:
        if getattr(module, "in_unconditional_pass", False):
            return
        module.in_unconditional_pass = True
        try:
            unconditional_labels = torch.zeros_like(kwargs["encoder_hidden_states"])
            capture_reference_features(module, ReferenceBank(), args[0], unconditional_labels, active_bank().part_masks)
        finally:
            module.in_unconditional_pass = False

    handle = pipe.reference_unet.register_forward_pre_hook(unconditional_pass, with_kwargs=True)
    try:
        yield pipe
    finally:
        handle.remove()
        pipe.unet.set_attn_processor(installed)


class ReleasedSelfAttention(ConcatenatingSelfAttention):
    """bench/attention_cost.py's released path, reading the generation's active bank."""

    def __init__(self, name: str) -> None:
        super().__init__(name, bank=None, queries_too=True)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        self.bank = active_bank()
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


@contextmanager
def plain_stable_diffusion(pipe: Parts2WholePipeline):
    """diffusers' StableDiffusionPipeline on the same models, every attention plain."""
    installed = dict(pipe.unet.attn_processors)
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    plain = StableDiffusionPipeline(
        vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=pipe.unet, scheduler=pipe.scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )  # fmt: skip
    plain.set_progress_bar_config(disable=True)
    try:
        yield plain
    finally:
        pipe.unet.set_attn_processor(installed)


@contextmanager
def channels_last(pipe: Parts2WholePipeline):
    """This pipeline with the UNets' and the VAE's weights in the channels-last layout."""
    models = (pipe.unet, pipe.reference_unet, pipe.vae)
    for model in models:
        model.to(memory_format=torch.channels_last)
    try:
        yield pipe
    finally:
        for model in models:
            model.to(memory_format=torch.contiguous_format)


@contextmanager
def processors_replaced(pipe: Parts2WholePipeline, replaced: type, replacement):
    """This pipeline with each of its denoising UNet's `replaced` processors swapped for
    `replacement(processor)` (the --breakdown rows: what a step costs without that work)."""
    installed = dict(pipe.unet.attn_processors)
    swapped = {key: replacement(each) if isinstance(each, replaced) else each for key, each in installed.items()}
    pipe.unet.set_attn_processor(swapped)
    try:
        yield pipe
    finally:
        pipe.unet.set_attn_processor(installed)


class TextOnlyCrossAttention(AttnProcessor2_0):
    """Plain cross-attention over the text tokens, the decoupled image tokens cut off the context."""

    def __init__(self, num_image_tokens: int) -> None:
        super().__init__()
        self.num_image_tokens = num_image_tokens

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        text = encoder_hidden_states[:, : -self.num_image_tokens]
        return super().__call__(attn, hidden_states, text, attention_mask, temb, *args, **kwargs)


BREAKDOWN = {
    "this, self-attention plain": (SharedSelfAttnProcessor, lambda processor: AttnProcessor2_0()),
    "this, cross-attention on the text only": (
        DecoupledCrossAttnProcessor,
        lambda processor: TextOnlyCrossAttention(processor.num_image_tokens),
    ),
}
"""The --breakdown rows: a processor class of this pipeline and what stands in for it."""


def compare(pipe: Parts2WholePipeline, device: torch.device, args: argparse.Namespace, parts: int) -> dict:
    """The three variants for `parts` parts, interleaved for `args.repeats` rounds (a drift of the
    device's speed touches each alike); each timing is the median over the rounds."""
    call = generation_call(dict(list(APPEARANCE.items())[:parts]), args)
    variants = {
        "this": (lambda: nullcontext(pipe), call),
        "released": (lambda: released_cost_structure(pipe), call),
        "plain": (lambda: plain_stable_diffusion(pipe), dict(prompt="a person", height=args.height, width=args.width, guidance_scale=7.5)),
    }
    if args.channels_last:
        variants["this, channels-last"] = (lambda: channels_last(pipe), call)
    if args.breakdown:
        for name, (replaced, replacement) in BREAKDOWN.items():
            variants[name] = (lambda replaced=replaced, replacement=replacement: processors_replaced(pipe, replaced, replacement), call)
    images, timings = {}, {name: [] for name in variants}
    for round_index in range(args.repeats):
        for name, (entered, variant_call) in variants.items():
            with entered() as runner:
                if round_index == 0:
                    runner(**variant_call, num_inference_steps=2)  # warm-up
                seeded = {**variant_call, "generator": torch.Generator().manual_seed(0)}
                images[name], timing = timed_call(runner, pipe.unet, device, seeded, args.steps)
                timings[name].append(timing)
    results = {name: median_timing(each) for name, each in timings.items()}
    results["max_abs_difference_this_vs_released"] = float(np.abs(images["this"] - images["released"]).max())
    if args.channels_last:
        results["max_abs_difference_this_vs_channels_last"] = float(np.abs(images["this"] - images["this, channels-last"]).max())
    results["ratios"] = {
        "seconds_per_image_this_over_released": results["this"]["seconds_per_image"] / results["released"]["seconds_per_image"],
        "ms_per_step_this_over_plain": results["this"]["ms_per_step"] / results["plain"]["ms_per_step"],
    }
    if args.breakdown:
        for name in BREAKDOWN:
            results["ratios"][f"ms_per_step_{name}_over_plain"] = results[name]["ms_per_step"] / results["plain"]["ms_per_step"]
    if device.type == "cuda":
        results["ratios"]["peak_memory_this_over_released"] = results["this"]["peak_gpu_gib"] / results["released"]["peak_gpu_gib"]
    return results


def median_timing(timings: list[dict]) -> dict:
    """Each measure's median over the rounds, and every round's seconds per image (the spread)."""
    medians = {key: None if timings[0][key] is None else float(np.median([t[key] for t in timings])) for key in timings[0]}
    return {**medians, "seconds_per_image_each_round": [t["seconds_per_image"] for t in timings]}


def memory_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict:
    """6 parts with this pipeline under each placement (each a fresh copy of one pipeline made on
    the CPU: making full-size random weights takes far longer than copying them)."""
    call = generation_call(dict(APPEARANCE), args)
    placements = {
        "all on the device": lambda pipe: pipe.to(device),
        "model offload": lambda pipe: pipe.enable_model_cpu_offload(device=device),
        "sequential offload": lambda pipe: pipe.enable_sequential_cpu_offload(device=device),
        "all on the device, VAE slicing and tiling": lambda pipe: (pipe.to(device), pipe.vae.enable_slicing(), pipe.vae.enable_tiling()),
        "model offload, VAE slicing and tiling": lambda pipe: (
            pipe.enable_model_cpu_offload(device=device), pipe.vae.enable_slicing(), pipe.vae.enable_tiling()
        ),
    }
    rows, source = {}, full_size_pipeline("cpu", dtype)
    for name, place in placements.items():
        pipe = copy.deepcopy(source)
        place(pipe)
        _, rows[name] = warmed_and_timed(pipe, pipe.unet, device, call, args.steps)
        del pipe
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def command_line(args: argparse.Namespace) -> str:
    words = ["python bench/compare.py"]
    for name, value in vars(args).items():
        if value is None or value is False:
            continue
        words.append(f"--{name.replace('_', '-')}")
        if value is not True:
            words.append(" ".join(map(str, value)) if isinstance(value, list) else str(value))
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 6])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per variant (medians reported)")
    parser.add_argument("--channels-last", action="store_true", help="also this pipeline with channels-last weights")
    parser.add_argument(
        "--breakdown", action="store_true", help="also this pipeline with plain self-attention, and with text-only cross-attention"
    )
    parser.add_argument("--memory", action="store_true", help="also the placements' rows (6 parts, one round each)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    pipe = full_size_pipeline(args.device, dtype)
    report = {
        "command": command_line(args),
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "size": f"{args.height}x{args.width}",
        "steps": args.steps,
        "dtype": args.dtype,
        "hidden_share_of_each_reference": HIDDEN_SHARE,
        "parts": {},
    }
    with torch.no_grad():
        for parts in args.parts:
            report["parts"][str(parts)] = compare(pipe, device, args, parts)
            print(json.dumps({parts: report["parts"][str(parts)]}, indent=1), flush=True)
        if args.memory:
            del pipe
            report["memory_6_parts"] = memory_rows(args, device, dtype)
            print(json.dumps(report["memory_6_parts"], indent=1), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
