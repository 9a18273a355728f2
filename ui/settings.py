"""The demo's limits and defaults; the P2W_* environment variables override them (e.g. on a Space)."""

import os
from pathlib import Path

MAX_SIDE = int(os.environ.get("P2W_MAX_SIDE", "1024"))
"""Largest height or width offered for the generated image."""
MIN_SIDE = int(os.environ.get("P2W_MIN_SIDE", "64"))
"""Smallest height or width offered (the mini model is sampled at 128 x 96)."""
MAX_IMAGES = int(os.environ.get("P2W_MAX_IMAGES", "4"))
MAX_STEPS = int(os.environ.get("P2W_MAX_STEPS", "100"))
UPSCALE_BELOW = int(os.environ.get("P2W_UPSCALE_BELOW", "256"))
"""References whose shorter side is below this many pixels are upscaled x4 on upload."""
MAX_UPSCALE_SIDE = int(os.environ.get("P2W_MAX_UPSCALE_SIDE", "1024"))
"""Largest side the x4 upscaler takes (it makes an image 16 times as large, for small references)."""
MAX_REFERENCE_SIDE = int(os.environ.get("P2W_MAX_REFERENCE_SIDE", "2048"))
"""Uploaded references larger than this are reduced on upload (they are resized for the model anyway)."""
GENERATION_CONCURRENCY = int(os.environ.get("P2W_GENERATION_CONCURRENCY", "1"))
"""Generations run at once: one fits a GPU; more only queue faster on a big one."""
OUTPUT_DIR = Path(os.environ.get("P2W_OUTPUT_DIR", "outputs"))
"""Each generation's inputs, images and settings are written to OUTPUT_DIR/SESSION/RUN (ui/outputs.py).
It must lie in the working directory or the system's temporary one: Gradio returns files from there only."""
OUTPUT_MAX_AGE = float(os.environ.get("P2W_OUTPUT_MAX_AGE", "3600"))
"""Seconds a run's files are kept (and Gradio's copies of them); all go at shutdown. 0: keep everything."""
SCHEDULER_CHOICES = {"DDIM": "ddim", "DPM++ 2M": "dpm++2m"}
"""Shown name -> the command line's scheduler name."""


def scheduler_shown(name: str) -> str:
    """The shown name of the command line's scheduler `name`."""
    return next(shown for shown, value in SCHEDULER_CHOICES.items() if value == name)
MASK_COLOUR = (255, 51, 102)
"""Colour of the mask overlay and of the brush."""
