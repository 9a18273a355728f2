"""The page: examples, part slots, pose, generation panel and results. No model code here.

Every generation input is registered under its name in `controls` (handlers.GENERATE_INPUTS), so
events are wired by name, not by position.
"""

from functools import partial

import gradio as gr

from parts2whole.body.presets import CONTROLS, PRESETS, control_values
from parts2whole.labels import LABEL_FOLDERS, PART_LABELS
from parts2whole.request import fast_settings

from . import settings
from .handlers import (
    EXAMPLE_OUTPUTS,
    GENERATE_INPUTS,
    PREVIEW_NAMES,
    SLOT_NAMES,
    WHOLE_IMAGE,
    WHOLE_NAMES,
    Handlers,
    editor_value,
)

TITLE = "Parts2Whole"
DESCRIPTION = (
    "A person from reference images of their **parts** and a **pose** ([paper](https://arxiv.org/abs/2404.15267)). "
    "Click an example, or fill the slots (each part is masked automatically: check it with *Edit mask*) and pick a pose."
)
CSS = """
#status {border-left: 4px solid #e6a23c; padding-left: 12px}
.slots {display: grid !important; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 8px}
.slot {min-width: 0 !important}
.slot button {min-width: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis}
.slot-title {padding: 4px 8px 0}
@media (max-width: 700px) {
  .slots {grid-template-columns: repeat(2, minmax(0, 1fr))}
  #generate-column {order: -1}
}
"""

SHOW_MASK_PANEL = "() => document.querySelector('#mask-panel').scrollIntoView({block: 'center'})"


def part_slot(label: str) -> dict[str, gr.components.Component]:
    """One image per part: upload into it; it then shows the reference with its mask over it."""
    name, slug = LABEL_FOLDERS[label], label.replace(" ", "-")
    with gr.Group(elem_classes="slot"):
        gr.Markdown(f"**{label.capitalize()}**", elem_classes="slot-title")
        image = gr.Image(
            label=f"{label} reference",
            show_label=False,
            type="pil",
            image_mode=None,
            height=120,
            sources=("upload", "clipboard"),
            placeholder="Drop an image",
            buttons=[],
            elem_id=f"upload-{slug}",
        )
        whole = gr.Checkbox(label=WHOLE_IMAGE, value=False, container=False, elem_id=f"whole-{slug}")
        with gr.Row(equal_height=True):
            edit = gr.Button("Edit mask", size="sm", min_width=0, elem_id=f"edit-{slug}")
            upscale = gr.Button("Upscale x4", size="sm", min_width=0)
    return {name: gr.State(), f"{name}_preview": image, f"{name}_whole": whole, f"{name}_edit": edit, f"{name}_upscale": upscale}


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


def hidden() -> dict:
    """The update that hides a component (the mask panel, when it is saved, closed or left)."""
    return gr.update(visible=False)


def empty_editors() -> dict:
    """An empty mask editor. Gradio 6.31's ImageEditor stalls on every second new value it receives
    while it holds one, so each new value is sent to an editor emptied just before."""
    return editor_value(None)


def build_demo(handlers: Handlers) -> gr.Blocks:
    defaults = handlers.models.defaults()
    with gr.Blocks(title=TITLE, delete_cache=cache_lifetime()) as demo:
        gr.Markdown(f"## {TITLE}\n{DESCRIPTION}")
        status = handlers.models.status()
        gr.Markdown("\n".join(f"- {line}" for line in status), elem_id="status", visible=bool(status))
        example_gallery = gr.Gallery(
            [(example.thumbnail, example.name.replace("_", " ")) for example in handlers.examples],
            show_label=False,
            columns=8,
            fit_columns=False,  # small thumbnails in one row, not three page-wide ones
            height=155,
            allow_preview=False,
            object_fit="contain",
            elem_id="examples",
        )
        controls: dict[str, gr.components.Component] = {}
        with gr.Row():
            with gr.Column(scale=5, min_width=320, elem_id="parts-column"):
                with gr.Row(elem_classes="slots"):
                    for label in PART_LABELS:
                        controls.update(part_slot(label))
                with gr.Group(visible=False, elem_id="mask-panel") as mask_panel:
                    mask_title = gr.Markdown()
                    editor = gr.ImageEditor(
                        show_label=False,
                        type="pil",
                        image_mode="RGBA",
                        format="png",
                        sources=(),
                        transforms=(),
                        layers=False,
                        brush=gr.Brush(colors=["#{:02x}{:02x}{:02x}".format(*settings.MASK_COLOUR)], color_mode="fixed"),
                        eraser=gr.Eraser(),
                        height=320,
                        elem_id="mask-editor",
                    )
                    with gr.Row():
                        automatic = gr.Button("Automatic mask", size="sm")
                        save_mask = gr.Button("Save mask", size="sm", variant="primary", elem_id="save-mask")
                        close_mask = gr.Button("Close", size="sm")
            with gr.Column(scale=2, min_width=240, elem_id="pose-column"):
                with gr.Row(equal_height=True):
                    controls["pose"] = gr.Image(
                        label="Pose (DensePose map)",
                        type="pil",
                        image_mode="RGB",
                        format="png",
                        sources=("upload", "clipboard"),
                        height=170,
                        placeholder="Drop a DensePose map",
                        elem_id="pose",
                    )
                    controls["pose_preview"] = gr.Image(label="Body parts", interactive=False, height=170, elem_id="pose-preview")
                with gr.Accordion("Pick a pose", open=False, elem_id="pose-picker"):
                    pose_gallery = gr.Gallery(
                        [(str(path), path.stem.replace("_", " ")) for path in handlers.poses],
                        show_label=False,
                        columns=4,
                        height=140,
                        allow_preview=False,
                        object_fit="contain",
                    )
                preset, pose_sliders = pose_maker()
                photo = pose_photo()
            with gr.Column(scale=3, min_width=300, elem_id="generate-column"):
                controls["prompt"] = gr.Textbox(
                    label="Prompt", placeholder="a woman in a red dress, full body, studio photo", lines=1, elem_id="prompt"
                )
                with gr.Row(equal_height=True):
                    run = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, min_width=0)
                results = gr.Gallery(
                    label="Results",
                    columns=2,
                    height=300,
                    object_fit="contain",  # a whole person, head to shoes: "cover" cut a portrait image to the box
                    format="png",
                    elem_id="results",
                    buttons=["download", "fullscreen"],
                )
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    controls["negative_prompt"] = gr.Textbox(label="Negative prompt", placeholder="blurry, deformed hands")
                    with gr.Row():
                        controls["seed"] = gr.Number(label="Seed", value=42, precision=0, minimum=0, maximum=2**31 - 1, elem_id="seed")
                        controls["random_seed"] = gr.Checkbox(label="Random seed", value=True, elem_id="random-seed")
                    fast = fast_settings(defaults)
                    speed = gr.Radio(
                        [
                            (f"Default ({settings.scheduler_shown(defaults['scheduler'])}, {defaults['steps']} steps)", "default"),
                            (f"Fast ({settings.scheduler_shown(fast['scheduler'])}, {fast['steps']} steps)", "fast"),
                        ],
                        value=None, label="Speed", elem_id="speed", info="sets the steps and the scheduler below",
                    )  # fmt: skip
                    with gr.Row():
                        controls["steps"] = gr.Slider(
                            1, settings.MAX_STEPS, value=defaults["steps"], step=1, label="Steps", elem_id="steps"
                        )
                        controls["guidance_scale"] = gr.Slider(
                            1.0, 15.0, value=defaults["guidance_scale"], step=0.5, label="Guidance scale"
                        )
                    with gr.Row():
                        controls["height"] = gr.Slider(
                            settings.MIN_SIDE, settings.MAX_SIDE, value=defaults["height"], step=8, label="Height", elem_id="height"
                        )
                        controls["width"] = gr.Slider(
                            settings.MIN_SIDE, settings.MAX_SIDE, value=defaults["width"], step=8, label="Width", elem_id="width"
                        )
                    with gr.Row():
                        controls["num_images"] = gr.Slider(1, settings.MAX_IMAGES, value=defaults["num_images"], step=1, label="Images")
                        controls["scheduler"] = gr.Dropdown(
                            list(settings.SCHEDULER_CHOICES), value=settings.scheduler_shown(defaults["scheduler"]), label="Scheduler"
                        )
                with gr.Accordion("This run: settings and files", open=False, elem_id="run-files"):
                    result_settings = gr.Code(
                        label="Settings of the selected result (python -m parts2whole SETTINGS.json --out DIR)",
                        language="json",
                        elem_id="result-settings",
                    )
                    archive = gr.File(label="Inputs, images and settings (zip)")
        with gr.Group(visible=False):  # the API's stateless generation (handlers.generate_from_json)
            request_json = gr.Textbox()
            request_files = gr.File(file_count="multiple", type="filepath")
            generate_json = gr.Button()
        ready = gr.HTML("", padding=False, elem_id="page-ready")  # filled once the page's events are wired
        settings_texts = gr.State([])
        editing = gr.State()
        staged = gr.State()

        slots = [controls[name] for name in SLOT_NAMES]
        slot_outputs = slots + [controls[name] for name in PREVIEW_NAMES] + [controls[name] for name in WHOLE_NAMES]
        for label, name in zip(PART_LABELS, SLOT_NAMES, strict=True):
            part, image, whole = controls[name], controls[f"{name}_preview"], controls[f"{name}_whole"]
            image.upload(
                partial(handlers.reference_uploaded, label), image, [part, image, whole], api_name=f"reference_{name}", preprocess=False
            )
            image.clear(lambda: (None, False), None, [part, whole], api_visibility="private")
            controls[f"{name}_upscale"].click(partial(handlers.upscale, label), part, [part, image], api_name=f"upscale_{name}")
            controls[f"{name}_edit"].click(
                partial(handlers.mask_to_edit, label), part, [staged, editing, mask_title], api_visibility="private"
            ).success(empty_editors, None, editor, api_visibility="private").then(
                lambda value: (value, gr.update(visible=True)), staged, [editor, mask_panel], api_visibility="private"
            ).then(None, js=SHOW_MASK_PANEL)
        automatic.click(handlers.automatic_mask, [editing, editor], staged, api_visibility="private").success(
            empty_editors, None, editor, api_visibility="private"
        ).then(lambda value: value, staged, editor, api_visibility="private")
        save_mask.click(handlers.mask_saved, [editing, editor, *slots], slot_outputs, api_visibility="private").success(
            hidden, None, mask_panel, api_visibility="private"
        )
        close_mask.click(hidden, None, mask_panel, api_visibility="private")

        pose, pose_preview = controls["pose"], controls["pose_preview"]
        pose.upload(handlers.pose_uploaded, pose, [pose, pose_preview], api_name="check_pose", preprocess=False)
        pose.clear(lambda: None, None, pose_preview, api_visibility="private")
        pose_gallery.select(handlers.pose_picked, None, [pose, pose_preview], api_visibility="private")
        speed.input(partial(handlers.speed_chosen, defaults), speed, [controls["steps"], controls["scheduler"]], api_visibility="private")
        preset.select(
            handlers.preset_chosen,
            [preset, controls["height"], controls["width"]],
            [*pose_sliders, pose, pose_preview],
            api_name="pose_preset",
        )
        for slider in pose_sliders:
            slider.input(
                handlers.pose_made,
                [preset, controls["height"], controls["width"], *pose_sliders],
                [pose, pose_preview],
                api_visibility="private",
                trigger_mode="always_last",
            )
        photo.upload(
            handlers.pose_from_photo, [photo, controls["height"], controls["width"]], [pose, pose_preview], api_name="pose_from_photo"
        )
        example_choice = gr.State()
        example_gallery.select(handlers.selected_index, None, example_choice, api_visibility="private").then(
            handlers.example_values, example_choice, [controls[name] for name in EXAMPLE_OUTPUTS], api_visibility="private"
        ).then(hidden, None, mask_panel, api_visibility="private")
        results_outputs = [results, controls["seed"], settings_texts, result_settings, archive]
        generation = run.click(
            handlers.generate,
            [controls[name] for name in GENERATE_INPUTS],
            results_outputs,
            concurrency_limit=settings.GENERATION_CONCURRENCY,
            concurrency_id="generation",
            api_name="generate",
            preprocess=False,  # the pose is read by the handler, so that a bad file gets a sentence
        )
        json_generation = generate_json.click(
            handlers.generate_from_json,
            [request_json, request_files],
            results_outputs,
            concurrency_limit=settings.GENERATION_CONCURRENCY,
            concurrency_id="generation",  # one limit for both ways in
            api_name="generate_request",
        )
        # Not queued behind the generation it stops (its own concurrency id, no limit).
        stop.click(
            handlers.stop, None, None, cancels=[generation, json_generation], concurrency_limit=None, concurrency_id="stop", api_name="stop"
        )
        demo.unload(handlers.stop)
        demo.load(handlers.page_loaded, None, ready, api_visibility="private")
        results.select(handlers.result_picked, settings_texts, result_settings, api_visibility="private")
    return demo


def cache_lifetime() -> tuple[int, int] | None:
    """Gradio's (frequency, age) for deleting its copies of the files it served: the outputs' age."""
    age = int(settings.OUTPUT_MAX_AGE)
    return (min(age, 600), age) if age > 0 else None
