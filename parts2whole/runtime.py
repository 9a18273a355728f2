"""Choosing a device, a precision and a scheduler, and loading the pipeline from `pretrained_weights/`.

Shared by the command line and the demo, so that both load the model the same way.
"""

import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, SchedulerMixin

from .loading import DECOUPLED_ATTN_FILE, resolve_checkpoint
from .pipeline import Parts2WholePipeline
from .weights import DEFAULT_WEIGHTS_DIR, SOURCES, fetch_command

logger = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict]] = {
    "ddim": (DDIMScheduler, {}),
    "dpm++2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}
"""Scheduler name -> class and the settings it is made with from the checkpoint's scheduler config."""


OUT_OF_MEMORY_HINT = "Out of GPU memory: try --low-vram, a smaller height and width, or fewer images."


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


def load_pipeline(
    weights: str | Path = DEFAULT_WEIGHTS_DIR,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    low_vram: bool = False,
) -> Parts2WholePipeline:
    """The pipeline on `device`, with the authors' fine-tuned VAE when it has been fetched.

    `low_vram` keeps each model on the CPU until it runs (`enable_model_cpu_offload`).
    """
    device = device or default_device()
    check_device(device)
    dtype = dtype or parse_dtype(None, device)
    checkpoint = resolve_checkpoint(checkpoint_folder(weights))
    components = {}
    vae_folder = checkpoint.parent / SOURCES["sd-vae-ft-mse"].target
    if vae_folder.is_dir():
        components["vae"] = AutoencoderKL.from_pretrained(vae_folder, torch_dtype=dtype)
    else:
        logger.warning("Using the checkpoint's own VAE; `%s` fetches the one the authors use.", fetch_command("sd-vae-ft-mse"))
    pipe = Parts2WholePipeline.from_pretrained(checkpoint, torch_dtype=dtype, **components)
    if low_vram:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe
