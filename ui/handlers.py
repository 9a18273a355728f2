"""What each control of the demo does. Model work goes through `ui.models.Models`; problems become
`gr.Error` (the action stops) or `gr.Warning` / `gr.Info` (it goes on).

The generation's inputs are named (GENERATE_INPUTS): layout.py gives each name one component, and
the handlers read the values by name, so a control is added in two places, not six.
"""

import json
import random
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from parts2whole.body import from_photo, render_pose
from parts2whole.body.presets import control_values, from_controls
from parts2whole.densepose import densepose_preview, densepose_problems
from parts2whole.labels import LABEL_FOLDERS, PART_LABELS, order_labels
from parts2whole.preprocess import FRAMES, load_image, to_rgba
from parts2whole.request import IMAGE_GROUPS, MAX_SEED, GenerationRequest, Limits, fast_settings, whole_number
from parts2whole.weights import fetch_command

from . import outputs, settings
from .examples import Example
from .gpu import gpu_task
from .models import Models, UserFacingError
from .stopping import GenerationStopped, StopFlags, raise_if_stopped, run_stoppable

SLOT_NAMES = tuple(LABEL_FOLDERS[label] for label in PART_LABELS)
"""Each slot's filled part (a `Part` in a gr.State), by the label's folder name."""
PREVIEW_NAMES = tuple(f"{name}_preview" for name in SLOT_NAMES)
WHOLE_NAMES = tuple(f"{name}_whole" for name in SLOT_NAMES)
"""Each slot's "Whole image" box: the reference unmasked (or masked by its own transparency)."""
PANEL_NAMES = ("prompt", "negative_prompt", "seed", "random_seed", "steps", "guidance_scale", "height", "width", "num_images", "scheduler")
GENERATE_INPUTS = (*SLOT_NAMES, *WHOLE_NAMES, "pose", *PANEL_NAMES)
EXAMPLE_OUTPUTS = (*SLOT_NAMES, *PREVIEW_NAMES, *WHOLE_NAMES, "pose", "pose_preview", *PANEL_NAMES)
WHOLE_IMAGE = "Whole image"


@dataclass
class Part:
    """A filled slot: the reference (RGBA) and its part mask (L; None where none was made)."""

    reference: Image.Image
    mask: Image.Image | None = None


def part_preview(part: Part | None) -> Image.Image | None:
    """The reference with its mask as a coloured, half-transparent overlay (what the slot shows)."""
    if part is None:
        return None
    shown = part.reference.copy()
    if part.mask is not None:
        shown.alpha_composite(mask_overlay(part.mask.resize(shown.size, Image.Resampling.NEAREST)))
    return shown


def editor_value(part: Part | None) -> dict:
    """An ImageEditor value: the reference as background, the mask as a layer to paint or erase."""
    if part is None:
        return {"background": None, "layers": [], "composite": None}
    layers = [] if part.mask is None else [mask_overlay(part.mask.resize(part.reference.size, Image.Resampling.NEAREST))]
    composite = part.reference.copy()
    for layer in layers:
        composite.alpha_composite(layer)
    return {"background": part.reference, "layers": layers, "composite": composite}


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


def read_upload(upload: dict | str | Image.Image | np.ndarray, what: str) -> Image.Image:
    """An uploaded image: Gradio's file payload (not preprocessed, so that any format reaches
    `load_image`), a path, or an image given directly. Errors name the file as the user called it."""
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


def has_transparency(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255


def demo_limits() -> Limits:
    return Limits(max_side=settings.MAX_SIDE, max_steps=settings.MAX_STEPS, max_images=settings.MAX_IMAGES)


@dataclass
class Handlers:
    models: Models
    examples: list[Example]
    poses: list[Path]
    stop_flags: StopFlags = field(default_factory=StopFlags)

    # ------------------------------------------------------------------------ reference slots

    @gpu_task(duration=60)
    def reference_uploaded(self, label: str, upload: dict | Image.Image | np.ndarray | None) -> tuple:
        """Read the uploaded file (any format), bring a huge one down, upscale a small one, then mask
        the part (or keep its own transparency): the slot's (part, preview, whole image).
        `upload` is Gradio's file payload, not preprocessed, so that unreadable files get our message."""
        if upload is None:
            return None, None, False
        try:
            loaded = read_upload(upload, f"The {label} image")
        except ValueError as error:
            gr.Warning(f"{error} The slot keeps its previous image.")
            return gr.skip(), gr.skip(), gr.skip()
        say_if_frames_were_dropped(loaded, f"The {label} image")
        reference = to_rgba(loaded)
        if max(reference.size) > settings.MAX_REFERENCE_SIDE:
            original = reference.size
            reference = ImageOps.contain(reference, (settings.MAX_REFERENCE_SIDE, settings.MAX_REFERENCE_SIDE))
            gr.Info(f"The {label} image is {original[0]}x{original[1]}; it is reduced to {reference.width}x{reference.height}.")
        if min(reference.size) < settings.UPSCALE_BELOW and self.models.has_upscaler():
            try:
                reference = self.models.upscale(reference)
                gr.Info(f"The {label} image was small; it is upscaled x4 to {reference.width}x{reference.height}.")
            except UserFacingError as error:
                gr.Warning(f"{error} The {label} image is used as it is.")
        if has_transparency(reference):
            gr.Info(f"The {label} image has transparency: it is used as the mask.")
            part = Part(reference)
            return part, part_preview(part), True
        part = self._masked(label, reference)
        return part, part_preview(part), part.mask is None

    @gpu_task(duration=60)
    def upscale(self, label: str, part: Part | None) -> tuple:
        """The slot's reference upscaled x4, its mask enlarged to match: (part, preview)."""
        if part is None:
            raise gr.Error(f"Upload a {label} image first.")
        upscaled = self._upscale(part.reference)
        mask = None if part.mask is None else part.mask.resize(upscaled.size, Image.Resampling.NEAREST)
        upscaled_part = Part(upscaled, mask)
        return upscaled_part, part_preview(upscaled_part)

    def _upscale(self, reference: Image.Image) -> Image.Image:
        try:
            return self.models.upscale(reference)
        except UserFacingError as error:
            raise gr.Error(str(error)) from None

    def _masked(self, label: str, reference: Image.Image) -> Part:
        """The reference with SegFormer's mask of `label`; with none where it cannot make one (said)."""
        masker = self.models.masker()
        if masker is None:
            gr.Info(
                f"No automatic mask: the SegFormer weights are missing (`{fetch_command('segformer', self.models.weights)}` fetches "
                f"them). Paint the {label} with 'Edit mask', or keep '{WHOLE_IMAGE}'."
            )
            return Part(reference)
        mask = masker(reference, label)
        if not np.asarray(mask).any():
            gr.Warning(f"No {label} was found in the image: paint the part with 'Edit mask', or keep '{WHOLE_IMAGE}'.")
            return Part(reference)
        return Part(reference, mask)

    # ------------------------------------------------------------------------ the mask editor

    @staticmethod
    def mask_to_edit(label: str, part: Part | None) -> tuple:
        """Open the mask editor on a slot: (the editor's value, staged; the label being edited; a title)."""
        if part is None:
            raise gr.Error(f"Upload a {label} image first.")
        title = f"**{label.capitalize()} mask**: paint the part, erase what is not part of it, then save."
        return editor_value(part), label, gr.update(value=title)

    @gpu_task(duration=60)
    def automatic_mask(self, label: str | None, value: dict | None) -> dict:
        """The editor's reference masked again by SegFormer (the editor's value, staged)."""
        background = (value or {}).get("background")
        if not label or background is None:
            raise gr.Error("Open a slot's mask with 'Edit mask' first.")
        return editor_value(self._masked(label, to_rgba(background)))

    @staticmethod
    def mask_saved(label: str | None, value: dict | None, *parts: Part | None) -> list:
        """The painted mask into the slot being edited: every slot's (part, preview, whole image),
        changed for that slot only."""
        background = (value or {}).get("background")
        if not label or background is None:
            raise gr.Error("Open a slot's mask with 'Edit mask' first.")
        index = PART_LABELS.index(label)  # `label` is the editor's own state, set by mask_to_edit
        if parts[index] is None:
            raise gr.Error(f"The {label} slot was emptied meanwhile: upload its image again.")
        reference = parts[index].reference
        mask = mask_from_layers(value.get("layers"), reference.size)
        if mask is None:
            gr.Info(f"The {label} mask is empty: the whole image is used.")
        part = Part(reference, mask)
        updates = [gr.skip()] * (3 * len(PART_LABELS))
        updates[index], updates[len(PART_LABELS) + index], updates[2 * len(PART_LABELS) + index] = part, part_preview(part), mask is None
        return updates

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

    @staticmethod
    def speed_chosen(defaults: dict, speed: str) -> tuple[int, str]:
        """The steps and shown scheduler of the chosen speed ("default" or "fast"): the model's
        defaults, or the fast preset."""
        chosen = fast_settings(defaults) if speed == "fast" else defaults
        return chosen["steps"], settings.scheduler_shown(chosen["scheduler"])

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
        """Every value of EXAMPLE_OUTPUTS for example `index`: its parts, the pose and the settings."""
        example = self.examples[index].request
        parts = {}
        for label, path in example.appearance.items():
            mask_path = example.mask.get(label)
            parts[label] = Part(to_rgba(load_image(path, label)), load_image(mask_path, label).convert("L") if mask_path else None)
        slots = [parts.get(label) for label in PART_LABELS]
        pose = load_image(example.structure["densepose"], "pose").convert("RGB")
        values = {
            **dict(zip(SLOT_NAMES, slots, strict=True)),
            **dict(zip(PREVIEW_NAMES, map(part_preview, slots), strict=True)),
            **{name: part is not None and part.mask is None for name, part in zip(WHOLE_NAMES, slots, strict=True)},
            "pose": pose,
            "pose_preview": densepose_preview(pose),
            "prompt": example.prompt,
            "negative_prompt": example.negative_prompt,
            "seed": example.seed,
            "random_seed": False,
            "steps": example.steps,
            "guidance_scale": example.guidance_scale,
            "height": example.height,
            "width": example.width,
            "num_images": example.num_images,
            "scheduler": settings.scheduler_shown(example.scheduler),
        }
        return [values[name] for name in EXAMPLE_OUTPUTS]

    # ------------------------------------------------------------------------------ generation

    @staticmethod
    def random_seed() -> int:
        return random.randrange(MAX_SEED + 1)

    async def generate(self, request: gr.Request, progress: gr.Progress = gr.Progress(), *values) -> tuple:
        """The Generate button: `values` are GENERATE_INPUTS' values, in that order, not preprocessed
        (the pose arrives as Gradio's file payload). Gradio passes `request` and `progress` itself (it
        fills only parameters placed before `*values`)."""
        form = dict(zip(GENERATE_INPUTS, values, strict=True))
        return await self._generate(request, progress, partial(self._request_from_form, form))

    async def generate_from_json(
        self, request_json: str | None, files: list[str] | None, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple:
        """The API's stateless generation (`/generate_request`): a request in its JSON form
        (parts2whole.request) whose image paths name files sent alongside (matched by file name)."""
        return await self._generate(request, progress, partial(self._request_from_json, request_json, files))

    async def _generate(self, request: gr.Request, progress: gr.Progress, write_request) -> tuple:
        """Write the inputs with `write_request(run)`, then denoise in a thread of its own that stops
        within one step when the event is cancelled (Stop, a client's cancel) or the tab is closed
        (ui/stopping.py). A run that does not finish leaves no files. Returns (gallery, seed, the
        settings of each image, the first one's, the run's zip)."""
        self.sweep_outputs()
        run = outputs.new_run(settings.OUTPUT_DIR, request.session_hash)
        try:
            job = write_request(run)
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
        gallery = [(str(image), f"seed {job.seed + index}") for index, image in enumerate(images)]
        return gallery, job.seed, settings_texts, settings_texts[0], archive

    @staticmethod
    def sweep_outputs() -> None:
        """Runs older than the outputs' age go (on each page load and before each generation)."""
        outputs.remove_old_runs(settings.OUTPUT_DIR, settings.OUTPUT_MAX_AGE)

    @classmethod
    def page_loaded(cls) -> str:
        """Sweep the outputs; the marker it returns tells a browser test the page is wired."""
        cls.sweep_outputs()
        return '<span class="ready"></span>'

    def stop(self, request: gr.Request) -> None:
        """The Stop button, and a closed tab (so the next visitor does not wait): every generation
        of this visitor's session ends at its current step."""
        self.stop_flags.stop_session(request.session_hash)

    @gpu_task(duration=180)
    def _generate_images(self, job: GenerationRequest, run: Path, on_step) -> list[Path]:
        try:
            for sentence in self.models.texts_cut(job):
                gr.Warning(sentence)
            return self.models.generate(job, run, on_step)
        except UserFacingError as error:
            raise gr.Error(str(error)) from None

    def _request_from_form(self, form: dict, run: Path) -> GenerationRequest:
        parts = {}
        for label, name, whole_name in zip(PART_LABELS, SLOT_NAMES, WHOLE_NAMES, strict=True):
            part = form[name]
            if part is None:
                continue
            if not form[whole_name] and part.mask is None:
                raise gr.Error(f"The {label} mask is empty: paint the part with 'Edit mask', or tick '{WHOLE_IMAGE}'.")
            parts[label] = Part(part.reference, None if form[whole_name] else part.mask)
        scheduler = form["scheduler"]
        if scheduler not in settings.SCHEDULER_CHOICES:
            raise gr.Error(f"Unknown scheduler {scheduler!r}; choose one of {', '.join(settings.SCHEDULER_CHOICES)}.")
        try:
            seed = self.random_seed() if form["random_seed"] else whole_number(form["seed"], "The seed", 0, MAX_SEED)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        chosen = {name: form[name] for name in ("steps", "guidance_scale", "height", "width", "num_images")}
        chosen |= {"prompt": form["prompt"] or "", "negative_prompt": form["negative_prompt"] or ""}
        pose = form["pose"]
        if pose is not None:  # Gradio's file payload (not preprocessed: an unreadable file gets our sentence)
            try:
                pose = read_upload(pose, "The pose")
            except ValueError as error:
                raise gr.Error(str(error)) from None
        return self._write_request(run, parts, pose, {**chosen, "seed": seed, "scheduler": settings.SCHEDULER_CHOICES[scheduler]})

    def _request_from_json(self, text: str | None, files: list[str] | None, run: Path) -> GenerationRequest:
        try:
            entry = json.loads(text or "")
        except json.JSONDecodeError as error:
            raise gr.Error(f"The request is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}).") from None
        if not isinstance(entry, dict):
            raise gr.Error("The request must be a JSON object (parts2whole.request's form).")
        sent = {Path(path).name: path for path in files or []}

        def image(group: str, name: str) -> Image.Image:
            path = (entry.get(group) or {}).get(name)
            if not isinstance(path, str) or Path(path).name not in sent:
                names = ", ".join(sent) or "none"
                raise gr.Error(f"The request's {group} {name!r} names {path!r}, which is not among the files sent ({names}).")
            try:
                return load_image(sent[Path(path).name], f"The {group} {name!r} ({Path(path).name})")
            except ValueError as error:
                raise gr.Error(str(error)) from None

        for group in IMAGE_GROUPS:
            if not isinstance(entry.get(group) or {}, dict):
                raise gr.Error(f"{group!r} must map names to image paths.")
        masks = {label: image("mask", label).convert("L") for label in entry.get("mask") or {}}
        parts = {label: Part(to_rgba(image("appearance", label)), masks.get(label)) for label in entry.get("appearance") or {}}
        pose = image("structure", "densepose") if "densepose" in (entry.get("structure") or {}) else None
        chosen = {key: value for key, value in entry.items() if key not in IMAGE_GROUPS}
        return self._write_request(run, parts, pose, {**self.models.defaults(), **chosen})

    def _write_request(self, run: Path, parts: dict[str, Part], pose: Image.Image | None, chosen: dict) -> GenerationRequest:
        """The parts and pose saved in `run` and the checked request that reads them (with a seed). The
        request names its files relative to `run`, as `GenerationRequest.from_dict` reads them: a
        relative output folder (the default `outputs`) must not be joined to itself."""
        if not parts:
            raise gr.Error("Add at least one part: upload a reference image into one of the part slots.")
        if pose is None:
            raise gr.Error("Add a pose: upload a DensePose map or pick one from the pose gallery.")
        try:
            labels = order_labels(parts)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        appearance, masks = {}, {}
        for label in labels:
            part = parts[label]
            appearance[label] = f"{LABEL_FOLDERS[label]}.png"
            part.reference.save(run / appearance[label])
            if part.mask is not None:
                masks[label] = f"{LABEL_FOLDERS[label]}_mask.png"
                part.mask.resize(part.reference.size, Image.Resampling.NEAREST).save(run / masks[label])
        structure = {"densepose": "densepose.png"}
        pose.convert("RGB").save(run / structure["densepose"])
        try:
            entry = {**chosen, "appearance": appearance, "mask": masks, "structure": structure}
            job = GenerationRequest.from_dict(entry, run, limits=demo_limits()).with_seed()
        except ValueError as error:
            raise gr.Error(str(error)) from None
        stretch = pose.width * job.height / (pose.height * job.width)
        if not 0.95 <= stretch <= 1.05:
            gr.Warning(
                f"The pose is {pose.width}x{pose.height} and the image {job.width}x{job.height}: the pose is "
                "stretched to fit. Set the size to the pose's proportions, or use a pose made at this size."
            )
        return job

    @staticmethod
    def result_picked(settings_texts: list[str], event: gr.SelectData) -> str:
        return settings_texts[event.index]
