"""Generation requests read from the command line's files, run, and written with their results.

A request's JSON form is parts2whole.request's; each image is written with, beside it, the request
that makes it alone, so that the settings of any result make it again.
"""

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from .pipeline import Parts2WholePipeline
from .request import GenerationRequest
from .runtime import SCHEDULERS, make_scheduler


def read_requests(path: Path, defaults: dict | None = None) -> list[GenerationRequest]:
    """The requests of a .json (one) or .jsonl (one a line) file, image paths made absolute and
    seeds drawn where none is given. `defaults` replace the request's defaults (a model's defaults.json)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}.") from None
    if path.suffix == ".jsonl":  # numbered as an editor numbers them, blank lines included
        numbered = [(f"{path}, line {number}", line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    else:
        numbered = [(f"{path}", text)]
    requests = []
    for where, line in numbered:
        try:
            requests.append(GenerationRequest.from_json(line, path.parent, defaults).with_seed())
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if not requests:
        raise ValueError(f"{path} holds no input.")
    return requests


def schedulers_for(pipe: Parts2WholePipeline) -> dict:
    """One scheduler of each kind in SCHEDULERS, made from the checkpoint's scheduler config."""
    return {name: make_scheduler(name, pipe.scheduler.config) for name in SCHEDULERS}


def generate(
    pipe: Parts2WholePipeline,
    request: GenerationRequest,
    schedulers: dict | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[Image.Image]:
    """The images of one request; image i is made from seed + i, so each can be made again alone. A
    request without a seed is refused: `request.with_seed()` draws one that `write_results` records.
    `schedulers`: from `schedulers_for(pipe)`, made once for many calls.

    `on_step(done, total)` is called after each denoising step (the demo's progress bar; an
    exception it raises stops the generation there).
    """

    def report(pipeline: Parts2WholePipeline, step: int, timestep, tensors: dict) -> dict:
        on_step(step + 1, request.steps)
        return tensors

    if request.seed is None:
        raise ValueError("The request has no seed: call request.with_seed() first, so that the seed used can be written.")
    scheduler = (schedulers or {}).get(request.scheduler) or make_scheduler(request.scheduler, pipe.scheduler.config)
    generators = [torch.Generator("cpu").manual_seed(request.seed + i) for i in range(request.num_images)]
    return pipe(
        appearance=request.appearance,
        mask=request.mask or None,
        structure=request.structure,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        height=request.height,
        width=request.width,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale,
        num_images_per_prompt=request.num_images,
        generator=generators,
        callback_on_step_end=report if on_step else None,
        scheduler=scheduler,
    ).images


def write_results(images: list[Image.Image], request: GenerationRequest, out: Path, stem: str) -> list[Path]:
    """Each image as OUT/STEM[_i].png with the request that makes it alone as OUT/STEM[_i].json;
    returns the images' paths."""
    written = []
    for index, image in enumerate(images):
        name = f"{stem}_{index}" if len(images) > 1 else stem
        image.save(out / f"{name}.png")
        (out / f"{name}.json").write_text(request.image(index).to_json(relative_to=out))
        written.append(out / f"{name}.png")
    return written
