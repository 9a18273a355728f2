"""The page: part slots, pose, generation panel, results and the example gallery. No model code here."""

from functools import partial

import gradio as gr

from parts2whole.body.presets import CONTROLS, PRESETS, control_values
from parts2whole.labels import LABEL_FOLDERS, PART_LABELS

from . import settings
from .handlers import MASK_MODES, PART_MASK, Handlers, editor_value

TITLE = "Parts2Whole"
DESCRIPTION = """
Generate a person from reference images of their **parts** and a **pose**
([paper](https://arxiv.org/abs/2404.15267)). Fill any of the six part slots: the part is masked
automatically (paint over the mask or erase it to correct it), small images are upscaled. Pick a
pose, describe the person, and generate. Click an example to fill everything at once.
"""
CSS = """
.slot {min-width: 220px}
#status {border-left: 4px solid #e6a23c; padding-left: 12px}
.slot-title {padding: 6px 10px 0}
"""


def part_slot(label: str) -> tuple[gr.Image, gr.ImageEditor, gr.Radio, gr.Button, gr.Button]:
    """An upload for the reference, and the mask over it as a layer to paint or erase."""
    with gr.Group(elem_classes="slot"):
        gr.Markdown(f"**{label.capitalize()}**", elem_classes="slot-title")
        upload = gr.Image(
            label=f"{label} reference",
            show_label=False,
            type="pil",
            image_mode=None,
            height=150,
            sources=("upload", "clipboard", "webcam"),
            elem_id=f"upload-{label.replace(' ', '-')}",
        )
        editor = gr.ImageEditor(
            label=f"{label} mask",
            show_label=False,
            type="pil",
            image_mode="RGBA",
            format="png",
            sources=(),
            transforms=(),
            layers=False,
            brush=gr.Brush(colors=["#{:02x}{:02x}{:02x}".format(*settings.MASK_COLOUR)], color_mode="fixed"),
            eraser=gr.Eraser(),
            height=260,
            placeholder="The mask appears here: paint to add, erase to remove.",
            elem_id=f"mask-{label.replace(' ', '-')}",
        )
        mode = gr.Radio(list(MASK_MODES), value=PART_MASK, show_label=False, container=False)
        with gr.Row():
            auto_mask = gr.Button("Automatic mask", size="sm")
            upscale = gr.Button("Upscale x4", size="sm")
    return upload, editor, mode, auto_mask, upscale


def pose_maker() -> tuple[gr.Dropdown, list[gr.Slider]]:
    """A preset and sliders that draw the DensePose map of a posable body (parts2whole.body)."""
    with gr.Accordion("Or make a pose: a preset, then sliders", open=False, elem_id="pose-maker"):
        preset = gr.Dropdown(list(PRESETS), value="standing", label="Preset", elem_id="pose-preset")
        values = control_values("standing")
        sliders = []
        for start in range(0, len(CONTROLS), 3):
            with gr.Row():
                for control, value in zip(CONTROLS[start : start + 3], values[start : start + 3], strict=True):
                    step = 1 if control.high > 5 else 0.01
                    sliders.append(
                        gr.Slider(control.low, control.high, value=value, step=step, label=control.label, elem_id=f"pose-{control.name}")
                    )
    return preset, sliders


def pose_photo() -> gr.Image:
    """An upload whose person's pose becomes the DensePose map (parts2whole.body.from_photo)."""
    with gr.Accordion("Or take the pose from a photo", open=False, elem_id="pose-from-photo"):
        gr.Markdown(
            "Upload a photo of one person: a body model is fitted to them (MediaPipe landmarks). "
            "It approximates DensePose; it is not a DensePose network's output."
        )
        photo = gr.Image(
            label="Photo of a person",
            type="pil",
            image_mode=None,
            sources=("upload", "clipboard", "webcam"),
            height=200,
            elem_id="pose-photo",
        )
    return photo


def empty_editors(count: int = 1) -> dict | list[dict]:
    """Empty mask editors. Gradio 6.31's ImageEditor stalls on every second new value it receives
    while it holds one, so each new value is sent to an editor emptied just before."""
    return editor_value(None) if count == 1 else [editor_value(None)] * count


def build_demo(handlers: Handlers) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        status = handlers.models.status()
        defaults = handlers.models.defaults()
        gr.Markdown("\n".join(f"- {line}" for line in status), elem_id="status", visible=bool(status))

        example_gallery = gr.Gallery(
            [(example.thumbnail, example.name.replace("_", " ")) for example in handlers.examples],
            label="Examples: click one to fill every slot",
            columns=max(len(handlers.examples), 3),
            height=230,
            allow_preview=False,
            object_fit="contain",
            elem_id="examples",
        )

        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("### Parts")
                slots = []
                for row_labels in (PART_LABELS[:3], PART_LABELS[3:]):
                    with gr.Row():
                        for label in row_labels:
                            slots.append((label, *part_slot(label)))
            with gr.Column(scale=2):
                gr.Markdown("### Pose")
                with gr.Row():
                    pose = gr.Image(
                        label="DensePose map",
                        type="pil",
                        image_mode="RGB",
                        format="png",
                        sources=("upload", "clipboard"),
                        height=300,
                        elem_id="pose",
                    )
                    pose_preview = gr.Image(label="Body parts", interactive=False, height=300)
                pose_gallery = gr.Gallery(
                    [(str(path), path.stem.replace("_", " ")) for path in handlers.poses],
                    label="Or pick a pose",
                    columns=4,
                    height=150,
                    allow_preview=False,
                    object_fit="contain",
                )
                preset, pose_sliders = pose_maker()
                photo = pose_photo()

        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", placeholder="a woman in a red dress, full body, studio photo", elem_id="prompt")
                negative = gr.Textbox(label="Negative prompt", placeholder="blurry, deformed hands")
                with gr.Row():
                    seed = gr.Number(label="Seed", value=42, precision=0, minimum=0, maximum=2**31 - 1)
                    randomize = gr.Checkbox(label="Random seed", value=True)
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        steps = gr.Slider(1, settings.MAX_STEPS, value=defaults["steps"], step=1, label="Steps", elem_id="steps")
                        guidance = gr.Slider(1.0, 15.0, value=defaults["guidance_scale"], step=0.5, label="Guidance scale")
                    with gr.Row():
                        height = gr.Slider(
                            settings.MIN_SIDE, settings.MAX_SIDE, value=defaults["height"], step=8, label="Height", elem_id="height"
                        )
                        width = gr.Slider(
                            settings.MIN_SIDE, settings.MAX_SIDE, value=defaults["width"], step=8, label="Width", elem_id="width"
                        )
                    with gr.Row():
                        num_images = gr.Slider(1, settings.MAX_IMAGES, value=1, step=1, label="Images")
                        scheduler = gr.Dropdown(
                            list(settings.SCHEDULER_CHOICES), value=settings.scheduler_shown(defaults["scheduler"]), label="Scheduler"
                        )
                with gr.Row():
                    run = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
            with gr.Column(scale=2):
                results = gr.Gallery(
                    label="Results", columns=2, height=420, format="png", elem_id="results", buttons=["download", "fullscreen"]
                )
                result_settings = gr.Code(
                    label="Settings of the selected result (python -m parts2whole SETTINGS.json --out DIR)",
                    language="json",
                    elem_id="result-settings",
                )
                archive = gr.File(label="This run: inputs, images and settings")
        settings_texts = gr.State([])

        slot_values = [component for _, _, editor, mode, _, _ in slots for component in (editor, mode)]
        uploads = [upload for _, upload, *_ in slots]
        editors = [editor for _, _, editor, *_ in slots]
        for label, upload, editor, mode, auto_mask, upscale in slots:
            name = LABEL_FOLDERS[label]
            upload.upload(handlers.editor_before_upload, upload, editor, api_visibility="private", preprocess=False).then(
                partial(handlers.reference_uploaded, label),
                upload,
                [editor, mode],
                api_name=f"reference_{name}",
                preprocess=False,
            )
            upload.clear(lambda: (editor_value(None), PART_MASK), None, [editor, mode], api_visibility="private")
            staged = gr.State()
            auto_mask.click(partial(handlers.automatic_mask, label), editor, [staged, mode], api_name=f"mask_{name}").then(
                empty_editors, None, editor, api_visibility="private"
            ).then(lambda value: value, staged, editor, api_visibility="private")
            upscale.click(partial(handlers.upscale, label), editor, staged, api_name=f"upscale_{name}").then(
                empty_editors, None, editor, api_visibility="private"
            ).then(lambda value: value, staged, editor, api_visibility="private")

        pose.upload(handlers.pose_uploaded, pose, [pose, pose_preview], api_name="check_pose", preprocess=False)
        pose.clear(lambda: None, None, pose_preview, api_visibility="private")
        pose_gallery.select(handlers.pose_picked, None, [pose, pose_preview], api_visibility="private")
        preset.input(handlers.preset_chosen, [preset, height, width], [*pose_sliders, pose, pose_preview], api_name="pose_preset")
        for slider in pose_sliders:
            slider.input(
                handlers.pose_made,
                [preset, height, width, *pose_sliders],
                [pose, pose_preview],
                api_visibility="private",
                trigger_mode="always_last",
            )
        photo.upload(handlers.pose_from_photo, [photo, height, width], [pose, pose_preview], api_name="pose_from_photo")
        panel = [prompt, negative, seed, randomize, steps, guidance, height, width, num_images, scheduler]
        example_choice = gr.State()
        example_gallery.select(handlers.selected_index, None, example_choice, api_visibility="private").then(
            lambda: empty_editors(len(editors)), None, editors, api_visibility="private"
        ).then(handlers.example_values, example_choice, uploads + slot_values + [pose, pose_preview] + panel, api_visibility="private")
        generation = run.click(
            handlers.generate,
            slot_values + [pose] + panel,
            [results, seed, settings_texts, result_settings, archive],
            concurrency_limit=settings.GENERATION_CONCURRENCY,
            api_name="generate",
        )
        # Not queued behind the generation it stops (its own concurrency id, no limit).
        stop.click(handlers.stop, None, None, cancels=[generation], concurrency_limit=None, concurrency_id="stop", api_name="stop")
        demo.unload(handlers.stop)
        results.select(handlers.result_picked, settings_texts, result_settings, api_visibility="private")
    return demo
