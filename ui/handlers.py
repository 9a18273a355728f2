"""What each control of the demo does. Model work goes through `ui.models.Models`; problems become
`gr.Error` (the action stops) or `gr.Warning` / `gr.Info` (it goes on)."""

import math
import random
import shutil
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from parts2whole.body import from_photo, render_pose
from parts2whole.body.presets import control_values, from_controls
from parts2whole.densepose import densepose_preview, densepose_problems
from parts2whole.labels import LABEL_FOLDERS, PART_LABELS
from parts2whole.preprocess import FRAMES, load_image, to_rgba
from parts2whole.weights import fetch_command

from . import settings
from .examples import Example
from .gpu import gpu_task
from .models import Models, UserFacingError
from .stopping import GenerationStopped, StopFlags, raise_if_stopped, run_stoppable

PART_MASK, WHOLE_IMAGE = "Part mask", "Whole image"
MASK_MODES = (PART_MASK, WHOLE_IMAGE)


def editor_value(reference: Image.Image | None, mask: Image.Image | None = None) -> dict:
    """An ImageEditor value: the reference as background, the mask as a coloured, half-transparent
    layer, and their composite (which the editor shows)."""
    if reference is None:
        return {"background": None, "layers": [], "composite": None}
    layers = [] if mask is None else [mask_overlay(mask.resize(reference.size, Image.Resampling.NEAREST))]
    composite = reference.copy()
    for layer in layers:
        composite.alpha_composite(layer)
    return {"background": reference, "layers": layers, "composite": composite}


def mask_overlay(mask: Image.Image) -> Image.Image:
    alpha = np.asarray(mask.convert("L")) > 127
    overlay = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    overlay[alpha] = (*settings.MASK_COLOUR, 160)
    return Image.fromarray(overlay, mode="RGBA")


def mask_from_layers(layers: list[Image.Image] | None, size: tuple[int, int]) -> Image.Image | None:
    """White wherever any layer has paint, at `size`; None when nothing is painted. Transparent and
    black pixels are not paint: a black-and-white mask sent as an opaque layer (through the API)
    means what a mask image means, not "everything"."""
    painted = np.zeros((size[1], size[0]), dtype=bool)
    for layer in layers or []:
        rgba = np.asarray(layer.convert("RGBA").resize(size, Image.Resampling.NEAREST))
        painted |= (rgba[..., 3] > 0) & (rgba[..., :3].max(axis=-1) > 0)
    if not painted.any():
        return None
    return Image.fromarray(painted.astype(np.uint8) * 255, mode="L")


def read_upload(upload: dict | Image.Image | np.ndarray, what: str) -> Image.Image:
    """An uploaded image: Gradio's file payload (not preprocessed, so that any format reaches
    `load_image`) or an image given directly. Errors name the file as the user called it."""
    if not isinstance(upload, dict):
        return load_image(upload, what)
    try:
        return load_image(upload["path"], what)
    except ValueError as error:
        name = upload.get("orig_name")
        raise ValueError(str(error).replace(upload["path"], name) if name else str(error)) from None


def say_if_frames_were_dropped(image: Image.Image, what: str) -> None:
    if image.info.get(FRAMES, 1) > 1:
        gr.Info(f"{what} has {image.info[FRAMES]} frames (an animation or a multi-page file): the first is used.")


def is_finite_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def whole_number(value: object, what: str, low: int, high: int) -> int:
    """`value` as an int in [low, high], else a gr.Error that says so (the API can send anything)."""
    if not is_finite_number(value) or value != int(value):
        raise gr.Error(f"{what} must be a whole number from {low} to {high}; got {value!r}.")
    if not low <= value <= high:
        raise gr.Error(f"{what} must be from {low} to {high}; got {value:g}.")
    return int(value)


def finite_number(value: object, what: str) -> float:
    if not is_finite_number(value):
        raise gr.Error(f"{what} must be a number; got {value!r}.")
    return float(value)


def has_transparency(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255


def reference_of(value: dict | None) -> Image.Image | None:
    background = (value or {}).get("background")
    return None if background is None else to_rgba(background)


@dataclass
class Handlers:
    models: Models
    examples: list[Example]
    poses: list[Path]
    stop_flags: StopFlags = field(default_factory=StopFlags)

    # ------------------------------------------------------------------------ reference slots

    @staticmethod
    def editor_before_upload(upload: dict | None) -> dict:
        """An emptied editor when the upload can be read (its value follows, see layout.empty_editors);
        the editor as it is when it cannot (reference_uploaded then says why)."""
        try:
            read_upload(upload, "upload")
        except (ValueError, TypeError):
            return gr.skip()
        return editor_value(None)

    @gpu_task(duration=60)
    def reference_uploaded(self, label: str, upload: dict | Image.Image | np.ndarray | None) -> tuple[dict, str]:
        """Read the uploaded file (any format), bring a huge one down, upscale a small one, then mask
        the part (or keep its own transparency). `upload` is Gradio's file payload, not preprocessed,
        so that unreadable files get our message."""
        if upload is None:
            return editor_value(None), PART_MASK
        try:
            loaded = read_upload(upload, f"The {label} image")
        except ValueError as error:
            gr.Warning(f"{error} The slot keeps its previous image.")
            return gr.skip(), gr.skip()
        say_if_frames_were_dropped(loaded, f"The {label} image")
        reference = to_rgba(loaded)
        if max(reference.size) > settings.MAX_REFERENCE_SIDE:
            original = reference.size
            reference = ImageOps.contain(reference, (settings.MAX_REFERENCE_SIDE, settings.MAX_REFERENCE_SIDE))
            gr.Info(f"The {label} image is {original[0]}x{original[1]}; it is reduced to {reference.width}x{reference.height}.")
        if min(reference.size) < settings.UPSCALE_BELOW and self.models.has_upscaler():
            reference = self._upscale(reference)
            gr.Info(f"The {label} image was small; it is upscaled x4 to {reference.width}x{reference.height}.")
        if has_transparency(reference):
            gr.Info(f"The {label} image has transparency: it is used as the mask.")
            return editor_value(reference), WHOLE_IMAGE
        return self._masked(label, reference)

    @gpu_task(duration=60)
    def automatic_mask(self, label: str, value: dict | None) -> tuple[dict, str]:
        reference = reference_of(value)
        if reference is None:
            raise gr.Error(f"Upload a {label} image first.")
        return self._masked(label, reference)

    @gpu_task(duration=60)
    def upscale(self, label: str, value: dict | None) -> dict:
        reference = reference_of(value)
        if reference is None:
            raise gr.Error(f"Upload a {label} image first.")
        mask = mask_from_layers(value.get("layers"), reference.size)
        upscaled = self._upscale(reference)
        return editor_value(upscaled, mask.resize(upscaled.size, Image.Resampling.NEAREST) if mask else None)

    def _upscale(self, reference: Image.Image) -> Image.Image:
        try:
            return self.models.upscale(reference)
        except UserFacingError as error:
            raise gr.Error(str(error)) from None

    def _masked(self, label: str, reference: Image.Image) -> tuple[dict, str]:
        masker = self.models.masker()
        if masker is None:
            gr.Info(
                f"No automatic mask: the SegFormer weights are missing (`{fetch_command('segformer', self.models.weights)}` fetches "
                f"them). Paint the {label} by hand, or keep '{WHOLE_IMAGE}'."
            )
            return editor_value(reference), WHOLE_IMAGE
        mask = masker(reference, label)
        if not np.asarray(mask).any():
            gr.Warning(f"No {label} was found in the image: paint the part by hand, or choose '{WHOLE_IMAGE}'.")
            return editor_value(reference), WHOLE_IMAGE
        return editor_value(reference, mask), PART_MASK

    # ------------------------------------------------------------------------------------ pose

    def pose_uploaded(self, upload: dict | Image.Image | None) -> tuple:
        """Check an uploaded pose (Gradio's file payload, not preprocessed) and show it in false colour;
        an unreadable file is taken out again."""
        if upload is None:
            return gr.skip(), None
        try:
            pose = read_upload(upload, "The pose")
        except ValueError as error:
            gr.Warning(str(error))
            return None, None
        say_if_frames_were_dropped(pose, "The pose")
        problems = densepose_problems(pose)
        if problems:
            gr.Warning("This does not look like a DensePose map: " + "; ".join(problems) + ".")
        return gr.skip(), densepose_preview(pose)

    def pose_picked(self, event: gr.SelectData) -> tuple[Image.Image, Image.Image]:
        pose = Image.open(self.poses[event.index]).convert("RGB")
        return pose, densepose_preview(pose)

    @staticmethod
    def pose_made(preset: str, height: float, width: float, *values: float) -> tuple[Image.Image, Image.Image]:
        """The pose maker's body in `preset` adjusted by the sliders, as a DensePose map of the
        generation's size (so it is not stretched), and its false-colour view."""
        pose, camera, build = from_controls(preset, list(values))
        iuv = render_pose(pose, build, camera, size=(int(width), int(height)))
        return iuv, densepose_preview(iuv)

    @staticmethod
    def pose_from_photo(photo: Image.Image | None, height: float, width: float) -> tuple:
        """The DensePose map of the body fitted to the person in `photo` (parts2whole.body.from_photo),
        the person centred in a map of the generation's size, and its false-colour view. No person,
        or no MediaPipe, is a warning and leaves the pose as it was."""
        if photo is None:
            return gr.skip(), gr.skip()
        try:
            fitted = from_photo.pose_from_photo(photo, size=(int(width), int(height)), frame="person")
        except (ValueError, ImportError) as error:
            gr.Warning(f"{error} The pose is unchanged.")
            return gr.skip(), gr.skip()
        iuv = fitted.densepose()
        gr.Info(
            "Pose from the photo: an approximation of DensePose, a body model fitted to the person's "
            "landmarks (MediaPipe), not a DensePose network's output. Check it in the body parts view."
        )
        return iuv, densepose_preview(iuv)

    @classmethod
    def preset_chosen(cls, preset: str, height: float, width: float) -> list:
        """The sliders set to show `preset`, and its map."""
        values = control_values(preset)
        return [*values, *cls.pose_made(preset, height, width, *values)]

    # -------------------------------------------------------------------------------- examples

    @staticmethod
    def selected_index(event: gr.SelectData) -> int:
        return event.index

    def example_values(self, index: int) -> list:
        """The uploads, the (mask, mode) of every slot, the pose and the settings of example `index`."""
        example = self.examples[index].settings
        uploads, slots = [], []
        for label in PART_LABELS:
            path = example["appearance"].get(label)
            if path is None:
                uploads.append(None)
                slots += [editor_value(None), PART_MASK]
                continue
            reference = to_rgba(load_image(path, label))
            mask_path = example["mask"].get(label)
            mask = load_image(mask_path, label).convert("L") if mask_path else None
            uploads.append(reference)
            slots += [editor_value(reference, mask), PART_MASK if mask else WHOLE_IMAGE]
        pose = load_image(example["structure"]["densepose"], "pose").convert("RGB")
        scheduler = settings.scheduler_shown(example["scheduler"])
        return uploads + slots + [
            pose, densepose_preview(pose), example["prompt"], example["negative_prompt"], example["seed"], False,
            example["steps"], example["guidance_scale"], example["height"], example["width"], example["num_images"],
            scheduler,
        ]

    # ------------------------------------------------------------------------------ generation

    @staticmethod
    def random_seed() -> int:
        return random.randrange(2**31)

    async def generate(
        self,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
        *values,
    ) -> tuple[list[tuple[str, str]], int, list[str], str, str]:
        """values: (editor, mode) for each PART_LABELS slot, then pose, prompt, negative prompt, seed,
        randomize, steps, guidance, height, width, number of images, scheduler. Gradio passes
        `request` and `progress` itself (it fills only parameters placed before `*values`).

        The denoising runs in a thread of its own that stops within one step when the event is
        cancelled (Stop, a client's cancel) or the tab is closed (ui/stopping.py). A run that does
        not finish leaves no files."""
        run = settings.OUTPUT_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        run.mkdir(parents=True, exist_ok=True)
        try:
            job = self._write_inputs(values, run)
            progress(0, desc="Loading the model (first time only) ...")
            with self.stop_flags.running(request.session_hash) as flag:

                def on_step(done: int, total: int) -> None:
                    raise_if_stopped(flag)
                    progress((done, total), desc="Denoising")

                images = await run_stoppable(partial(self._generate_images, job, run, on_step), flag)
        except BaseException as error:
            shutil.rmtree(run, ignore_errors=True)
            if isinstance(error, GenerationStopped):
                raise gr.Error("The generation was stopped.") from None
            raise
        settings_texts = [image.with_suffix(".json").read_text() for image in images]
        archive = shutil.make_archive(str(run), "zip", run)
        gallery = [(str(image), f"seed {job['seed'] + index}") for index, image in enumerate(images)]
        return gallery, job["seed"], settings_texts, settings_texts[0], archive

    def stop(self, request: gr.Request) -> None:
        """The Stop button, and a closed tab (so the next visitor does not wait): every generation
        of this visitor's session ends at its current step."""
        self.stop_flags.stop_session(request.session_hash)

    @gpu_task(duration=180)
    def _generate_images(self, job: dict, run: Path, on_step) -> list[Path]:
        try:
            for sentence in self.models.texts_cut(job):
                gr.Warning(sentence)
            return self.models.generate(job, run, on_step)
        except UserFacingError as error:
            raise gr.Error(str(error)) from None

    def _write_inputs(self, values: tuple, run: Path) -> dict:
        """The generation's inputs saved in `run`, and the job that reads them (the command line's format)."""
        slots = values[: 2 * len(PART_LABELS)]
        pose, prompt, negative, seed, randomize, steps, guidance, height, width, num_images, scheduler = values[2 * len(PART_LABELS) :]
        appearance, masks = {}, {}
        for label, value, mode in zip(PART_LABELS, slots[0::2], slots[1::2], strict=True):
            reference = reference_of(value)
            if reference is None:
                continue
            appearance[label] = str(run / f"{LABEL_FOLDERS[label]}.png")
            reference.save(appearance[label])
            if mode == PART_MASK:
                mask = mask_from_layers(value.get("layers"), reference.size)
                if mask is None:
                    raise gr.Error(
                        f"The {label} mask is empty: paint the part, press 'Automatic mask', or choose '{WHOLE_IMAGE}'."
                    )
                masks[label] = str(run / f"{LABEL_FOLDERS[label]}_mask.png")
                mask.save(masks[label])
        if not appearance:
            raise gr.Error("Add at least one part: upload a reference image into one of the part slots.")
        if pose is None:
            raise gr.Error("Add a pose: upload a DensePose map or pick one from the pose gallery.")
        structure = {"densepose": str(run / "densepose.png")}
        pose.convert("RGB").save(structure["densepose"])
        if scheduler not in settings.SCHEDULER_CHOICES:
            raise gr.Error(f"Unknown scheduler {scheduler!r}; choose one of {', '.join(settings.SCHEDULER_CHOICES)}.")
        job = {
            "appearance": appearance, "mask": masks, "structure": structure,
            "prompt": prompt or "", "negative_prompt": negative or "",
            "seed": self.random_seed() if randomize else whole_number(seed, "The seed", 0, 2**31 - 1),
            "height": whole_number(height, "The height", 8, settings.MAX_SIDE),
            "width": whole_number(width, "The width", 8, settings.MAX_SIDE),
            "steps": whole_number(steps, "The number of steps", 1, settings.MAX_STEPS),
            "guidance_scale": finite_number(guidance, "The guidance scale"),
            "num_images": whole_number(num_images, "The number of images", 1, settings.MAX_IMAGES),
            "scheduler": settings.SCHEDULER_CHOICES[scheduler],
        }  # fmt: skip
        stretch = pose.width * job["height"] / (pose.height * job["width"])
        if not 0.95 <= stretch <= 1.05:
            gr.Warning(
                f"The pose is {pose.width}x{pose.height} and the image {job['width']}x{job['height']}: the pose is "
                "stretched to fit. Set the size to the pose's proportions, or use a pose made at this size."
            )
        return job

    @staticmethod
    def result_picked(settings_texts: list[str], event: gr.SelectData) -> str:
        return settings_texts[event.index]
