"""Choosing a device, a precision and a scheduler, and loading the pipeline from `pretrained_weights/`.

Shared by the command line and the demo, so that both load the model the same way.
"""

import argparse
import json
import logging
import os
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, SchedulerMixin

from .loading import DECOUPLED_ATTN_FILE, missing_checkpoint_parts, resolve_checkpoint
from .pipeline import Parts2WholePipeline
from .weights import DEFAULT_WEIGHTS_DIR, SOURCES, fetch_command

logger = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict]] = {
    "ddim": (DDIMScheduler, {}),
    "dpm++2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}
"""Scheduler name -> class and the settings it is made with from the checkpoint's scheduler config."""


MINI_MODEL_DIR = Path(
    os.environ.get("P2W_MINI_MODEL", Path(__file__).resolve().parents[1] / "pretrained_weights" / "parts2whole-mini")
).resolve()
"""The small model this project trained on its own synthetic people, shipped in the repository
(docs/mini_model.md): what runs where the released weights have not been fetched. P2W_MINI_MODEL
points elsewhere (or nowhere, to turn the fallback off)."""
MINI_NOTICE = (
    "Running parts2whole-mini, a small demo model trained on synthetic people: it draws synthetic people "
    f"at {{width}}x{{height}}. Fetch the released weights for real photos: `{fetch_command('parts2whole')}`."
)
DEFAULTS_FILE = "defaults.json"
"""Beside a checkpoint: the settings it is meant to be sampled with (height, width, steps,
guidance_scale, scheduler), used instead of the released model's defaults."""
SD_VAE_CHANNELS = [128, 256, 512, 512]
"""The block widths of Stable Diffusion's VAE, the only VAE the fine-tuned one can replace."""

OUT_OF_MEMORY_HINT = "Out of GPU memory: try --low-vram, a smaller height and width, or fewer images."


def add_model_arguments(parser: argparse.ArgumentParser, device_help: str = "cuda, cuda:1, cpu (default: cuda if available)") -> None:
    """The options that choose and place the model, the same for the demo and the command line."""
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS_DIR), help="weights folder (default: %(default)s)")
    parser.add_argument("--device", default=None, help=device_help)
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"], help="default: float16 on GPU")
    parser.add_argument("--low-vram", action="store_true", help="keep each model on the CPU until it runs")


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, with a sentence instead of a torch error."""
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"Unknown device {device!r}; use cuda, cuda:N or cpu.") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} was asked for, but this machine has no usable CUDA GPU; use --device cpu.")


def parse_dtype(name: str | None, device: str) -> torch.dtype:
    """`name` from DTYPES, or the default for the device: float16 on a GPU, float32 elsewhere."""
    if name is None:
        return torch.float16 if device.startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype {name!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[name]


def make_scheduler(name: str, config: dict) -> SchedulerMixin:
    if name not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
    scheduler_class, settings = SCHEDULERS[name]
    return scheduler_class.from_config(config, **settings)


def checkpoint_folder(weights: str | Path) -> Path:
    """`weights` is either the folder that holds all weights (pretrained_weights/) or the checkpoint."""
    weights = Path(weights)
    if (weights / DECOUPLED_ATTN_FILE).exists() or (weights / "unet").is_dir():
        return weights
    return weights / SOURCES["parts2whole"].target


def model_folder(weights: str | Path = DEFAULT_WEIGHTS_DIR) -> Path:
    """The checkpoint to run: the released one under `weights` when it is complete, else the mini
    model shipped in the repository, else the released one's place (so errors say how to fetch it)."""
    released = checkpoint_folder(weights)
    if missing_checkpoint_parts(released) and not missing_checkpoint_parts(MINI_MODEL_DIR):
        return MINI_MODEL_DIR
    return released


def is_mini_model(folder: Path) -> bool:
    return folder.resolve() == MINI_MODEL_DIR


def model_defaults(folder: Path) -> dict:
    """The settings of `folder`'s defaults.json, or {} where it has none."""
    path = folder / DEFAULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def mini_notice(folder: Path) -> str | None:
    """What a user must know when the mini model runs; None for any other model."""
    if not is_mini_model(folder):
        return None
    defaults = model_defaults(folder)
    return MINI_NOTICE.format(width=defaults.get("width", "?"), height=defaults.get("height", "?"))


def load_pipeline(
    weights: str | Path = DEFAULT_WEIGHTS_DIR,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    low_vram: bool = False,
) -> Parts2WholePipeline:
    """The pipeline of `model_folder(weights)` on `device`, with the authors' fine-tuned VAE in place
    of a Stable Diffusion VAE when it has been fetched.

    `low_vram` keeps each model on the CPU until it runs (`enable_model_cpu_offload`).
    """
    device = device or default_device()
    check_device(device)
    dtype = dtype or parse_dtype(None, device)
    checkpoint = resolve_checkpoint(model_folder(weights))
    components = {}
    vae_folder = checkpoint_folder(weights).parent / SOURCES["sd-vae-ft-mse"].target
    sd_vae = AutoencoderKL.load_config(checkpoint / "vae")["block_out_channels"] == SD_VAE_CHANNELS
    if sd_vae and vae_folder.is_dir():
        components["vae"] = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=dtype)
    elif sd_vae:
        logger.warning("Using the checkpoint's own VAE; `%s` fetches the one the authors use.", fetch_command("sd-vae-ft-mse"))
    pipe = Parts2WholePipeline.from_pretrained(checkpoint, torch_dtype=dtype, **components)
    if low_vram:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe
