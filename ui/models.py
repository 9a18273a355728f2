"""The models behind the demo, loaded once on first use and shared by every session.

Nothing here knows Gradio: problems are raised as exceptions whose message is a sentence for
the user (`UserFacingError`), and handlers.py shows them.
"""

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

from parts2whole.jobs import generate, schedulers_for, write_results
from parts2whole.loading import WeightsNotFoundError, missing_checkpoint_parts
from parts2whole.part_masks import PartMasker
from parts2whole.pipeline import Parts2WholePipeline, tokenize
from parts2whole.request import SETTING_DEFAULTS, GenerationRequest
from parts2whole.runtime import checkpoint_folder, load_pipeline, mini_notice, model_defaults, model_folder
from parts2whole.upscale import Upscaler
from parts2whole.weights import SOURCES, fetch_command

from . import settings

OUT_OF_MEMORY = (
    "The GPU ran out of memory. Try a smaller size or fewer images, or restart the demo with "
    "`python app.py --low-vram`."
)


class UserFacingError(Exception):
    """A problem the user can act on; the message says how."""


@contextmanager
def out_of_memory_explained() -> Iterator[None]:
    """Turn a CUDA out-of-memory error into a UserFacingError, after freeing what it can."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        raise UserFacingError(OUT_OF_MEMORY) from None


class Models:
    """Lazy, thread-safe access to the pipeline, the part masker and the upscaler."""

    def __init__(self, weights: str | Path, device: str, dtype: torch.dtype, low_vram: bool = False) -> None:
        self.weights = Path(weights)
        self.device = device
        self.dtype = dtype
        self.low_vram = low_vram
        self._lock = threading.Lock()
        self._pipeline: Parts2WholePipeline | None = None
        self._schedulers: dict = {}
        self._masker: PartMasker | None = None
        self._upscaler: Upscaler | None = None

    # --------------------------------------------------------------------------- what is there

    def segformer_folder(self) -> Path:
        return self._beside_checkpoint("segformer")

    def realesrgan_file(self) -> Path:
        return self._beside_checkpoint("realesrgan")

    def _beside_checkpoint(self, name: str) -> Path:
        return checkpoint_folder(self.weights).parent / SOURCES[name].target

    def has_pipeline(self) -> bool:
        return not missing_checkpoint_parts(model_folder(self.weights))

    def defaults(self) -> dict:
        """The generation settings the model is meant for: its defaults.json over the released model's."""
        return {**SETTING_DEFAULTS, **model_defaults(model_folder(self.weights))}

    def has_masker(self) -> bool:
        return (self.segformer_folder() / "config.json").is_file()

    def has_upscaler(self) -> bool:
        return self.realesrgan_file().is_file()

    def status(self) -> list[str]:
        """One sentence per missing set of weights: what is off and the command that fixes it."""
        lines = []
        notice = mini_notice(model_folder(self.weights))
        if notice:
            lines.append(notice)
        if not self.has_pipeline():
            lines.append(f"Generation is off: the Parts2Whole weights are missing. Run `{fetch_command('parts2whole', self.weights)}`.")
        if not self.has_masker():
            lines.append(f"Automatic masks are off (draw them by hand). Run `{fetch_command('segformer', self.weights)}`.")
        if not self.has_upscaler():
            lines.append(f"Upscaling is off. Run `{fetch_command('realesrgan', self.weights)}`.")
        return lines

    # ------------------------------------------------------------------------------ the models

    def pipeline(self) -> Parts2WholePipeline:
        with self._lock:
            if self._pipeline is None:
                try:
                    self._pipeline = load_pipeline(self.weights, self.device, self.dtype, self.low_vram)
                except WeightsNotFoundError as error:
                    raise UserFacingError(str(error)) from None
                self._schedulers = schedulers_for(self._pipeline)
            return self._pipeline

    def masker(self) -> PartMasker | None:
        """The SegFormer part masker, or None when its weights are missing."""
        with self._lock:
            if self._masker is None and self.has_masker():
                self._masker = PartMasker(self.segformer_folder(), self.device)
            return self._masker

    def upscaler(self) -> Upscaler | None:
        """The Real-ESRGAN upscaler, or None when its weights are missing."""
        with self._lock:
            if self._upscaler is None and self.has_upscaler():
                try:
                    self._upscaler = Upscaler(self.realesrgan_file(), self.device)
                except ValueError as error:
                    raise UserFacingError(f"{error} Fetch it again: `{fetch_command('realesrgan', self.weights)}`.") from None
            return self._upscaler

    def preload(self) -> None:
        """Load every model whose weights are present (at start-up on a Space). One that cannot be
        loaded is said here and again at its first use; the demo starts either way."""
        for load in ([self.pipeline] if self.has_pipeline() else []) + [self.masker, self.upscaler]:
            try:
                load()
            except UserFacingError as error:
                print(f"Not loaded: {error}", file=sys.stderr)

    # ------------------------------------------------------------------------------ the work

    def generate(self, request: GenerationRequest, out: Path, on_step: Callable[[int, int], None] | None = None) -> list[Path]:
        """Run one seeded request; write its images, each with the request that makes it alone."""
        pipe = self.pipeline()
        try:
            with out_of_memory_explained():
                images = generate(pipe, request, self._schedulers, on_step)
        except ValueError as error:
            raise UserFacingError(str(error)) from None
        return write_results(images, request, out, "result")

    def texts_cut(self, request: GenerationRequest) -> list[str]:
        """A sentence for each of the prompt and the negative prompt that is longer than the text
        encoder reads (the pipeline cuts it, as diffusers pipelines do)."""
        tokenizer = self.pipeline().tokenizer
        limit = tokenizer.model_max_length
        return [
            f"The {name.replace('_', ' ')} is longer than the model reads ({limit} tokens): its end is ignored."
            for name in ("prompt", "negative_prompt")
            if tokenize(tokenizer, [getattr(request, name)]).shape[-1] > limit
        ]

    def upscale(self, image: Image.Image) -> Image.Image:
        if max(image.size) > settings.MAX_UPSCALE_SIDE:
            raise UserFacingError(
                f"The image is {image.width}x{image.height}: upscaling x4 is for small references, up to "
                f"{settings.MAX_UPSCALE_SIDE} pixels a side. This one is large enough as it is."
            )
        upscaler = self.upscaler()
        if upscaler is None:
            raise UserFacingError(f"Upscaling needs the Real-ESRGAN weights: run `{fetch_command('realesrgan', self.weights)}`.")
        with out_of_memory_explained():
            return upscaler(image)
