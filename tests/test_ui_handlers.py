"""The demo's handlers on tiny models: slots, masks, upscaling, pose, examples, generation."""

import asyncio
import json
import os
import random
import re
import shutil
import time
import warnings
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from parts2whole import runtime
from parts2whole.body import from_photo
from parts2whole.body.presets import CONTROLS, PRESETS, control_values
from parts2whole.cli import main as cli_main
from parts2whole.densepose import densepose_preview, densepose_problems
from parts2whole.labels import PART_LABELS
from parts2whole.preprocess import FRAMES
from parts2whole.request import MAX_SEED, GenerationRequest
from parts2whole.testing.inputs import densepose_image, noise_image, rectangle_mask
from parts2whole.testing.tiny_models import write_demo_weights
from ui import settings
from ui.examples import load_examples, load_poses
from ui.handlers import (
    EXAMPLE_OUTPUTS,
    GENERATE_INPUTS,
    SLOT_NAMES,
    WHOLE_NAMES,
    Handlers,
    Part,
    editor_value,
    has_transparency,
    mask_from_layers,
    mask_overlay,
    read_upload,
    say_if_frames_were_dropped,
)
from ui.models import Models

SMALL = dict(steps=2, guidance_scale=7.5, height=64, width=48, num_images=1, scheduler="DDIM")


@pytest.fixture(scope="session")
def demo_weights(tmp_path_factory):
    return write_demo_weights(tmp_path_factory.mktemp("demo") / "pretrained_weights")


@pytest.fixture
def handlers(demo_weights, tmp_path, monkeypatch) -> Handlers:
    monkeypatch.setattr(settings, "OUTPUT_DIR", tmp_path / "outputs")
    return Handlers(Models(demo_weights, "cpu", torch.float32), load_examples(), load_poses())


def select(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


def run_generation(handlers: Handlers, *values, session: str = "visitor", progress=None):
    """Handlers.generate as Gradio runs it: awaited, with the visitor's request."""
    return asyncio.run(handlers.generate(gr.Request(session_hash=session), progress or gr.Progress(), *values))


def generate_args(slots: dict, pose, prompt="a person", seed=3, randomize=False, **overrides) -> list:
    """Handlers.generate's values in GENERATE_INPUTS' order; `slots`: label -> (Part, whole image)."""
    named = {"pose": pose, "prompt": prompt, "negative_prompt": "", "seed": seed, "random_seed": randomize, **SMALL, **overrides}
    for label, name, whole in zip(PART_LABELS, SLOT_NAMES, WHOLE_NAMES, strict=True):
        named[name], named[whole] = slots.get(label, (None, False))
    return [named[name] for name in GENERATE_INPUTS]


def face_part() -> Part:
    return Part(noise_image(1, (40, 50)).convert("RGBA"))


def test_generation_writes_images_settings_and_an_archive_that_reproduce(handlers, demo_weights, tmp_path) -> None:
    face = noise_image(1, (40, 50)).convert("RGBA")
    slots = {
        "face": (Part(face, rectangle_mask(face.size, (0.2, 0.2, 0.8, 0.8))), False),
        "shoes": (Part(noise_image(2, (30, 20)).convert("RGBA")), True),
    }
    gallery, seed, texts, shown, archive = run_generation(handlers, *generate_args(slots, densepose_image(), num_images=2))
    assert seed == 3 and len(gallery) == 2 and shown == texts[0]
    assert Image.open(gallery[0][0]).size == (48, 64) and gallery[1][1] == "seed 4"
    settings_1 = json.loads(texts[1])
    assert settings_1["seed"] == 4 and settings_1["mask"] == {"face": "face_mask.png"} and "shoes" in settings_1["appearance"]
    with zipfile.ZipFile(archive) as run:
        assert {"face.png", "face_mask.png", "shoes.png", "densepose.png", "result_1.png", "result_1.json"} <= set(run.namelist())
    # the settings shown for a result make that result again from the command line
    result_json = gallery[1][0].replace(".png", ".json")
    assert cli_main([result_json, "--out", str(tmp_path / "again"), "--weights", str(demo_weights), "--device", "cpu"]) == 0
    again = np.asarray(Image.open(tmp_path / "again" / "result_1.png"), dtype=int)
    assert np.abs(again - np.asarray(Image.open(gallery[1][0]), dtype=int)).max() <= 1


def test_a_relative_output_folder_works(handlers, tmp_path, monkeypatch) -> None:
    """The default output folder is relative (`outputs`), as on a fresh clone's `python app.py`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings, "OUTPUT_DIR", Path("outputs"))
    gallery, *_ = run_generation(handlers, *generate_args({"face": (face_part(), True)}, densepose_image()))
    assert Image.open(gallery[0][0]).size == (48, 64)


def test_random_seed_is_reported(handlers) -> None:
    slots = {"face": (face_part(), True)}
    _, seed, texts, _, _ = run_generation(handlers, *generate_args(slots, densepose_image(), seed=0, randomize=True))
    assert json.loads(texts[0])["seed"] == seed


@pytest.mark.parametrize(
    ("slots", "pose", "message"),
    [
        ({}, "pose", "Add at least one part: upload a reference image into one of the part slots."),
        ({"face": "face"}, None, "Add a pose: upload a DensePose map or pick one from the pose gallery."),
        ({"face": "empty-mask"}, "pose", "The face mask is empty: paint the part with 'Edit mask', or tick 'Whole image'."),
    ],
)
def test_generation_refuses_incomplete_input(handlers, slots, pose, message) -> None:
    values = {"face": (face_part(), True), "empty-mask": (face_part(), False)}
    with pytest.raises(gr.Error) as refused:
        run_generation(handlers, *generate_args({label: values[v] for label, v in slots.items()}, densepose_image() if pose else None))
    assert refused.value.message == message


def counting_steps(handlers: Handlers, monkeypatch, at_step=None) -> list[int]:
    """Record the denoising steps of the next generations; at step `at_step` of the first, press Stop."""
    steps: list[int] = []
    generate = handlers.models.generate

    def counted(job, run, on_step):
        def step(done: int, total: int) -> None:
            steps.append(done)
            if done == at_step and steps == list(range(1, at_step + 1)):
                handlers.stop(gr.Request(session_hash="visitor"))
            on_step(done, total)

        return generate(job, run, step)

    monkeypatch.setattr(handlers.models, "generate", counted)
    return steps


def face_slots() -> dict:
    return {"face": (face_part(), True)}


def test_stop_ends_the_generation_at_its_step_and_the_next_is_exact(handlers, monkeypatch) -> None:
    expected, *_ = run_generation(handlers, *generate_args(face_slots(), densepose_image()))
    steps = counting_steps(handlers, monkeypatch, at_step=2)
    with pytest.raises(gr.Error) as stopped:
        run_generation(handlers, *generate_args(face_slots(), densepose_image(), steps=40))
    assert stopped.value.message == "The generation was stopped."
    assert steps == [1, 2]  # Stop pressed during step 2: the generation ended there
    assert len(list(settings.OUTPUT_DIR.glob("*/*"))) == 2  # the first run and its zip: the stopped one left nothing
    again, *_ = run_generation(handlers, *generate_args(face_slots(), densepose_image()))
    assert np.array_equal(np.asarray(Image.open(again[0][0])), np.asarray(Image.open(expected[0][0])))


def test_a_cancelled_event_stops_its_generation_before_the_cancel_completes(handlers, monkeypatch) -> None:
    """Gradio cancels an event (a client's cancel, the Stop button) by cancelling its task."""
    steps = counting_steps(handlers, monkeypatch)

    async def cancel_after_the_first_step() -> tuple[int, int]:
        request = gr.Request(session_hash="visitor")
        values = generate_args(face_slots(), densepose_image(), steps=40)
        task = asyncio.ensure_future(handlers.generate(request, gr.Progress(), *values))
        while not steps:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        done = len(steps)
        await asyncio.sleep(0.5)
        return done, len(steps)

    done, later = asyncio.run(cancel_after_the_first_step())
    assert done < 40 and later == done  # the thread had stopped when the cancel returned
    assert not list(settings.OUTPUT_DIR.glob("*/*"))


def test_a_closed_tab_stops_only_its_own_generations(handlers) -> None:
    flags = handlers.stop_flags
    with flags.running("closed") as closed, flags.running("other") as other:
        handlers.stop(gr.Request(session_hash="closed"))
        assert closed.is_set() and not other.is_set()


def test_bad_settings_from_the_api_are_explained(handlers) -> None:
    with pytest.raises(gr.Error, match="The height must be a multiple of 8; got 68."):
        run_generation(handlers, *generate_args(face_slots(), densepose_image(), height=68))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seed": None}, "The seed must be a whole number from 0 to 2147483647; got None."),
        ({"seed": float("nan")}, "The seed must be a whole number from 0 to 2147483647; got nan."),
        ({"seed": -1}, "The seed must be from 0 to 2147483647; got -1."),
        ({"steps": None}, "The number of steps must be a whole number from 1 to 100; got None."),
        ({"steps": 2.5}, "The number of steps must be a whole number from 1 to 100; got 2.5."),
        ({"guidance_scale": float("nan")}, "The guidance scale must be a number (1 turns guidance off); got nan."),
        ({"guidance_scale": None}, "The guidance scale must be a number (1 turns guidance off); got None."),
        ({"prompt": 3}, "The prompt must be text; got 3."),
        ({"height": 100000}, "The height must be from 8 to 1024; got 100000."),
        ({"num_images": 0}, "The number of images must be from 1 to 4; got 0."),
        ({"scheduler": "Euler"}, "Unknown scheduler 'Euler'; choose one of DDIM, DPM++ 2M."),
    ],
)
def test_odd_values_from_the_api_get_a_sentence(handlers, overrides, message) -> None:
    with pytest.raises(gr.Error) as error:
        run_generation(handlers, *generate_args(face_slots(), densepose_image(), **overrides))
    assert error.value.message == message
    assert not list(settings.OUTPUT_DIR.glob("*/*"))


def test_missing_weights_are_named_with_their_fetch_command(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(settings, "OUTPUT_DIR", tmp_path / "outputs")
    monkeypatch.setattr(runtime, "MINI_MODEL_DIR", tmp_path / "no-mini-model")
    models = Models(tmp_path / "empty", "cpu", torch.float32)
    assert [line.split("Run ")[1] for line in models.status()] == [
        f"`python download_weights.py --only parts2whole --dir {tmp_path / 'empty'}`.",
        f"`python download_weights.py --only segformer --dir {tmp_path / 'empty'}`.",
        f"`python download_weights.py --only realesrgan --dir {tmp_path / 'empty'}`.",
    ]
    bare = Handlers(models, [], [])
    with pytest.raises(gr.Error, match="python download_weights.py --only parts2whole"):
        run_generation(bare, *generate_args(face_slots(), densepose_image()))
    with pytest.raises(gr.Error, match="--only realesrgan"):
        bare.upscale("face", face_part())
    part, preview, whole = bare.reference_uploaded("face", noise_image(3, (300, 300)))
    assert whole and part.mask is None and part.reference.size == (300, 300) and preview.size == (300, 300)
    assert (
        f"No automatic mask: the SegFormer weights are missing (`python download_weights.py --only segformer --dir "
        f"{tmp_path / 'empty'}` fetches them). Paint the face with 'Edit mask', or keep 'Whole image'."
    ) in capsys.readouterr().out  # gr.Info outside a request prints


def test_small_reference_is_upscaled_and_masked_on_upload(handlers) -> None:
    part, preview, whole = handlers.reference_uploaded("upper body clothes", noise_image(4, (40, 30)))
    assert part.reference.size == (160, 120) and preview.size == (160, 120)
    assert whole == (part.mask is None)


def test_large_reference_is_not_upscaled_and_transparency_is_its_mask(handlers) -> None:
    cut_out = noise_image(5, (300, 400)).convert("RGBA")
    cut_out.putalpha(rectangle_mask(cut_out.size, (0.1, 0.1, 0.9, 0.9)))
    part, _, whole = handlers.reference_uploaded("lower body clothes", cut_out)
    assert part.reference.size == (300, 400) and whole and part.mask is None


@pytest.mark.parametrize(
    ("image", "message"),
    [(Image.new("RGB", (4, 4)), "too small|at least 8 pixels"), (np.zeros((2, 9, 9, 3), np.uint8), "must be HxW")],
)
def test_unusable_upload_warns_and_keeps_the_slot(handlers, image, message) -> None:
    with pytest.warns(UserWarning, match=message):
        outputs = handlers.reference_uploaded("face", image)
    assert all(isinstance(output, type(gr.skip())) for output in outputs)


def test_odd_image_modes_upload(handlers) -> None:
    for image in (Image.new("CMYK", (300, 300), (0, 255, 255, 0)), Image.new("L", (300, 300), 90),
                  Image.fromarray(np.full((300, 300), 40000, np.uint16))):  # fmt: skip
        part, _, _ = handlers.reference_uploaded("face", image)
        assert part.reference.mode == "RGBA" and part.reference.size == (300, 300)


def test_upscale_button_keeps_the_mask_aligned(handlers) -> None:
    face = noise_image(6, (40, 30)).convert("RGBA")
    mask = rectangle_mask(face.size, (0.0, 0.0, 0.5, 1.0))
    upscaled, preview = handlers.upscale("face", Part(face, mask))
    assert upscaled.reference.size == (160, 120) and preview.size == (160, 120)
    painted = np.asarray(upscaled.mask) > 0
    assert painted[:, :80].all() and not painted[:, 80:].any()


def test_editor_value_and_mask_round_trip() -> None:
    reference = noise_image(7, (64, 32)).convert("RGBA")
    mask = rectangle_mask(reference.size, (0.25, 0.25, 0.75, 0.75))
    value = editor_value(Part(reference, mask))
    assert np.array_equal(np.asarray(mask_from_layers(value["layers"], reference.size)), np.asarray(mask))
    assert value["composite"].getpixel((32, 16)) != reference.getpixel((32, 16))  # the overlay shows
    assert mask_from_layers([], (8, 8)) is None
    # an opaque black-and-white layer (an API client's mask) is the white part, not the whole image
    opaque = Image.merge("RGBA", [mask, mask, mask, Image.new("L", mask.size, 255)])
    assert np.array_equal(np.asarray(mask_from_layers([opaque], reference.size)), np.asarray(mask))
    assert mask_from_layers([Image.new("RGBA", (8, 8), (0, 0, 0, 255))], (8, 8)) is None


def test_pose_upload_checks_and_previews(handlers, tmp_path) -> None:
    _, preview = handlers.pose_uploaded(densepose_image())
    assert preview.size == (48, 64)
    both = (
        "This does not look like a DensePose map: only 0% of it is black background; a DensePose map is black wherever "
        "there is no body; 88% of its body pixels have a blue (part index) value above 24; DensePose part indices run from 1 to 24."
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(both)}$"):
        handlers.pose_uploaded(noise_image(8, (48, 64)))
    corrupt = tmp_path / "pose.png"
    corrupt.write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="The pose: 'my_pose.png' is not a readable image"):
        assert handlers.pose_uploaded({"path": str(corrupt), "orig_name": "my_pose.png"}) == (None, None)
    pose, preview = handlers.pose_picked(select(0))
    assert pose.size == (512, 768) and preview.size == (512, 768)


def test_an_animated_pose_is_read_with_a_notice(handlers, tmp_path, capsys) -> None:
    frames = [densepose_image(), noise_image(1, (48, 64)), noise_image(2, (48, 64))]
    frames[0].save(tmp_path / "pose.gif", save_all=True, append_images=frames[1:])
    _, preview = handlers.pose_uploaded({"path": str(tmp_path / "pose.gif"), "orig_name": "pose.gif"})
    assert preview.size == (48, 64)
    assert "The pose has 3 frames (an animation or a multi-page file): the first is used." in capsys.readouterr().out


def test_a_prompt_cut_by_the_text_encoder_is_reported(handlers) -> None:
    with pytest.warns(UserWarning, match=r"The prompt is longer than the model reads \(77 tokens\): its end is ignored."):
        run_generation(handlers, *generate_args(face_slots(), densepose_image(), prompt="a person " * 80))


def test_a_pose_of_other_proportions_is_stretched_with_a_warning(handlers) -> None:
    with pytest.warns(UserWarning, match="The pose is 96x32 and the image 48x64: the pose is stretched to fit"):
        run_generation(handlers, *generate_args(face_slots(), densepose_image((96, 32))))


@pytest.mark.parametrize(
    ("pose_size", "warned"),
    [((96, 128), False), ((57, 80), False), ((63, 80), False), ((56, 80), True), ((64, 80), True)],
)
def test_the_stretch_warning_allows_five_percent(handlers, pose_size, warned) -> None:
    """Into 48 x 64: 57 x 80 and 63 x 80 are exactly 5 % narrower and wider (no warning); 56 x 80
    and 64 x 80 a little more (warned, with the full sentence)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_generation(handlers, *generate_args(face_slots(), densepose_image(pose_size)))
    said = [str(warning.message) for warning in caught if "stretched" in str(warning.message)]
    expected = (
        f"The pose is {pose_size[0]}x{pose_size[1]} and the image 48x64: the pose is stretched to fit. "
        "Set the size to the pose's proportions, or use a pose made at this size."
    )
    assert said == ([expected] if warned else [])


def test_every_example_fills_every_slot(handlers) -> None:
    assert [example.name for example in handlers.examples] == ["dress", "no_shoes", "top_and_trousers"]
    for index, example in enumerate(handlers.examples):
        values = dict(zip(EXAMPLE_OUTPUTS, handlers.example_values(index), strict=True))
        for label, name in zip(PART_LABELS, SLOT_NAMES, strict=True):
            part, present = values[name], label in example.request.appearance
            assert (part is not None) == present and (values[f"{name}_preview"] is not None) == present
            assert not present or (part.mask is not None) == (label in example.request.mask) != values[f"{name}_whole"]
        assert values["prompt"] == example.request.prompt and values["seed"] == example.request.seed
        assert values["random_seed"] is False and values["scheduler"] == "DDIM"


def test_unreadable_upload_is_named(handlers, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    payload = {"path": str(corrupt), "orig_name": "holiday.png"}  # Gradio's file payload
    with pytest.warns(UserWarning, match="The face image: 'holiday.png' is not a readable image.*keeps its previous image"):
        handlers.reference_uploaded("face", payload)


def test_huge_upload_is_reduced(handlers, capsys) -> None:
    part, _, _ = handlers.reference_uploaded("face", noise_image(9, (3000, 1500)))
    assert part.reference.size == (settings.MAX_REFERENCE_SIDE, settings.MAX_REFERENCE_SIDE // 2)
    assert "it is reduced to 2048x1024" in capsys.readouterr().out


def test_generation_reports_every_denoising_step(handlers, tmp_path) -> None:
    face = tmp_path / "face.png"
    noise_image(1, (40, 50)).save(face)
    pose = tmp_path / "pose.png"
    densepose_image().save(pose)
    job = GenerationRequest(appearance={"face": str(face)}, structure={"densepose": str(pose)}, seed=1, height=64, width=48, steps=3)
    steps = []
    (tmp_path / "run").mkdir()
    handlers.models.generate(job, tmp_path / "run", lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_pose_maker_presets_give_valid_maps_of_the_generation_size(preset) -> None:
    *values, pose, preview = Handlers.preset_chosen(preset, 128, 96)
    assert len(values) == len(CONTROLS) and values == control_values(preset)
    assert pose.size == (96, 128) and preview.size == (96, 128)
    assert densepose_problems(pose) == []


@pytest.mark.parametrize("extreme", ["low", "high"])
def test_pose_maker_slider_extremes_give_valid_maps(extreme) -> None:
    values = [control.low if extreme == "low" else control.high for control in CONTROLS]
    pose, _ = Handlers.pose_made("walking", 768, 512, *values)
    assert pose.size == (512, 768) and densepose_problems(pose) == []
    moved, _ = Handlers.pose_made("walking", 768, 512, *[v if c.name != "yaw" else 0 for c, v in zip(CONTROLS, values, strict=True)])
    assert moved.tobytes() != pose.tobytes()  # the view slider takes effect


def test_without_released_weights_the_demo_runs_the_mini_model_at_its_defaults(demo_weights, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(settings, "OUTPUT_DIR", tmp_path / "outputs")
    mini = tmp_path / "parts2whole-mini"
    shutil.copytree(demo_weights / "parts2whole", mini)
    (mini / runtime.DEFAULTS_FILE).write_text(
        json.dumps({"height": 40, "width": 24, "steps": 2, "guidance_scale": 3.0, "scheduler": "dpm++2m"})
    )
    monkeypatch.setattr(runtime, "MINI_MODEL_DIR", mini.resolve())
    models = Models(tmp_path / "empty", "cpu", torch.float32)
    assert models.has_pipeline() and "small demo model trained on synthetic people" in models.status()[0]
    assert not any("Generation is off" in line for line in models.status())
    defaults = models.defaults()
    assert (defaults["height"], defaults["width"], defaults["scheduler"]) == (40, 24, "dpm++2m")
    examples = load_examples(defaults=defaults)
    assert all(example.request.height == 40 and example.request.steps == 2 for example in examples)
    gallery, *_ = run_generation(Handlers(models, examples, []), *generate_args(face_slots(), densepose_image(), height=40, width=24))
    assert Image.open(gallery[0][0]).size == (24, 40)


def test_the_mask_editor_saves_into_the_slot_it_opened(handlers, capsys) -> None:
    face = noise_image(6, (40, 30)).convert("RGBA")
    shoes = Part(noise_image(7, (30, 20)).convert("RGBA"))
    staged, label, title = Handlers.mask_to_edit("face", Part(face))
    assert label == "face" and staged["background"] is face and staged["layers"] == []
    assert title == gr.update(value="**Face mask**: paint the part, erase what is not part of it, then save.")
    painted = mask_overlay(rectangle_mask(face.size, (0.0, 0.0, 0.5, 1.0)))
    parts = [Part(face) if name == "face" else shoes if name == "shoes" else None for name in SLOT_NAMES]
    updates = Handlers.mask_saved("face", {**staged, "layers": [painted]}, *parts)
    index = PART_LABELS.index("face")
    part, preview, whole = updates[index], updates[6 + index], updates[12 + index]
    assert np.array_equal(np.asarray(part.mask) > 0, np.asarray(rectangle_mask(face.size, (0.0, 0.0, 0.5, 1.0))) > 0)
    assert whole is False and preview.getpixel((2, 15)) != face.getpixel((2, 15))  # the overlay shows in the slot
    untouched = [value for i, value in enumerate(updates) if i not in (index, 6 + index, 12 + index)]
    assert all(isinstance(value, type(gr.skip())) for value in untouched)
    assert "mask is empty" not in capsys.readouterr().out
    erased = Handlers.mask_saved("face", {**staged, "layers": []}, *parts)
    assert erased[index].mask is None and erased[12 + index] is True  # nothing painted: the whole image
    assert "The face mask is empty: the whole image is used." in capsys.readouterr().out  # gr.Info outside a request prints
    with pytest.raises(gr.Error, match="Upload a face image first."):
        Handlers.mask_to_edit("face", None)
    with pytest.raises(gr.Error, match="The face slot was emptied meanwhile"):
        Handlers.mask_saved("face", staged, *[None] * 6)


def test_a_json_request_with_its_files_generates_like_the_form(handlers, tmp_path) -> None:
    face, pose = tmp_path / "face.png", tmp_path / "pose.png"
    face_part().reference.save(face)
    densepose_image().save(pose)
    request = {"appearance": {"face": "face.png"}, "structure": {"densepose": "any/folder/pose.png"}, "prompt": "a person",
               "seed": 3, "steps": 2, "height": 64, "width": 48}  # fmt: skip
    gallery, seed, texts, _, _ = asyncio.run(
        handlers.generate_from_json(json.dumps(request), [str(face), str(pose)], gr.Request(session_hash="api"), gr.Progress())
    )
    form, *_ = run_generation(handlers, *generate_args(face_slots(), densepose_image()))
    assert seed == 3 and json.loads(texts[0])["steps"] == 2
    assert np.array_equal(np.asarray(Image.open(gallery[0][0])), np.asarray(Image.open(form[0][0])))
    for text, files, message in [
        ("{", [], "The request is not valid JSON"),
        (json.dumps({**request, "colour": 1}), [str(face), str(pose)], "Unknown key(s) ['colour']"),
        (
            json.dumps(request), [str(face), str(tmp_path / "b.png")],
            "names 'any/folder/pose.png', which is not among the files sent (face.png, b.png).",
        ),
        (json.dumps({**request, "appearance": {"hat": "face.png"}}), [str(face), str(pose)], "Unknown part label(s) 'hat'"),
    ]:
        with pytest.raises(gr.Error, match=re.escape(message)):
            asyncio.run(handlers.generate_from_json(text, files, gr.Request(session_hash="api"), gr.Progress()))


def test_an_unreadable_pose_sent_to_generate_is_named(handlers, tmp_path) -> None:
    corrupt = tmp_path / "upload.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(gr.Error, match="The pose: 'my_pose.png' is not a readable image"):
        run_generation(handlers, *generate_args(face_slots(), {"path": str(corrupt), "orig_name": "my_pose.png"}))
    assert not list(settings.OUTPUT_DIR.glob("*/*"))


def test_out_of_gpu_memory_gets_its_sentence_and_the_demo_goes_on(handlers) -> None:
    """A CUDA out-of-memory error in the UNet (raised by a forward hook, as a GPU would)."""

    def out_of_memory(module, inputs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    handle = handlers.models.pipeline().unet.register_forward_pre_hook(out_of_memory)
    try:
        with pytest.raises(gr.Error) as error:
            run_generation(handlers, *generate_args(face_slots(), densepose_image()))
    finally:
        handle.remove()
    assert error.value.message == (
        "The GPU ran out of memory. Try a smaller size or fewer images, or restart the demo with `python app.py --low-vram`."
    )
    assert not list(settings.OUTPUT_DIR.glob("*/*"))
    gallery, *_ = run_generation(handlers, *generate_args(face_slots(), densepose_image()))
    assert Image.open(gallery[0][0]).size == (48, 64)


def test_random_seed_draws_a_new_seed_each_time(handlers) -> None:
    seeds = {run_generation(handlers, *generate_args(face_slots(), densepose_image(), seed=3, randomize=True))[1] for _ in range(3)}
    assert len(seeds) == 3 and 3 not in seeds


def test_the_chosen_scheduler_is_the_one_that_runs(handlers) -> None:
    """The UNet's timesteps show which scheduler ran: DPM++ 2M's 2 steps are not DDIM's."""
    unet = handlers.models.pipeline().unet
    seen: list[int] = []
    handle = unet.register_forward_pre_hook(lambda module, args: seen.append(int(args[1])))
    try:
        images = {}
        for shown, name in (("DDIM", "ddim"), ("DPM++ 2M", "dpm++2m")):
            seen.clear()
            gallery, _, texts, _, _ = run_generation(handlers, *generate_args(face_slots(), densepose_image(), scheduler=shown))
            expected = runtime.make_scheduler(name, handlers.models.pipeline().scheduler.config)
            expected.set_timesteps(2)
            assert seen == [int(t) for t in expected.timesteps] and json.loads(texts[0])["scheduler"] == name
            images[name] = np.asarray(Image.open(gallery[0][0]), dtype=int)
    finally:
        handle.remove()
    assert np.abs(images["ddim"] - images["dpm++2m"]).max() > 0


def test_speed_sets_the_fast_preset_or_the_models_defaults() -> None:
    defaults = {"steps": 50, "scheduler": "ddim"}
    assert Handlers.speed_chosen(defaults, "fast") == (20, "DPM++ 2M")
    assert Handlers.speed_chosen(defaults, "default") == (50, "DDIM")
    assert Handlers.speed_chosen({"steps": 25, "scheduler": "ddim"}, "fast") == (10, "DPM++ 2M")


def test_painted_layers_make_an_exact_mask() -> None:
    """Layers are unioned; a layer of another size is scaled without blending (no grey edge that
    would grow the mask); any alpha and any colour above black is paint; the mask is 0/255 "L"."""
    left = Image.new("RGBA", (8, 8))
    left.paste((255, 0, 0, 255), (0, 0, 4, 8))
    small = Image.new("RGBA", (4, 4))
    small.paste((0, 255, 0, 255), (3, 3, 4, 4))  # one pixel: the bottom-right 2 x 2 block at 8 x 8
    faint = Image.new("RGBA", (8, 8))
    faint.putpixel((6, 0), (1, 0, 0, 1))
    faint.putpixel((7, 0), (255, 255, 255, 0))  # colour under full transparency is not paint
    mask = mask_from_layers([left, small, faint], (8, 8))
    expected = np.zeros((8, 8), np.uint8)
    expected[:, :4] = 255
    expected[6:, 6:] = 255
    expected[0, 6] = 255
    assert mask.mode == "L"
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_an_empty_slot_opens_an_empty_editor_and_a_mask_is_laid_on_its_reference() -> None:
    assert editor_value(None) == {"background": None, "layers": [], "composite": None}
    reference = noise_image(3, (8, 8)).convert("RGBA")
    half = rectangle_mask((4, 4), (0.0, 0.0, 0.5, 1.0))  # smaller than the reference: scaled without blending
    (layer,) = editor_value(Part(reference, half))["layers"]
    assert layer.size == (8, 8)
    np.testing.assert_array_equal(np.asarray(layer)[..., 3] > 0, np.asarray(rectangle_mask((8, 8), (0.0, 0.0, 0.5, 1.0))) > 0)
    assert set(np.unique(np.asarray(layer)[..., 3])) == {0, 160}


def test_saving_without_an_open_editor_is_refused_and_a_save_updates_every_slot_output() -> None:
    face = Part(noise_image(6, (40, 30)).convert("RGBA"))
    parts = [face if name == "face" else None for name in SLOT_NAMES]
    staged, _, _ = Handlers.mask_to_edit("face", face)
    for label, value in ((None, staged), ("face", None), ("face", {**staged, "background": None})):
        with pytest.raises(gr.Error) as error:
            Handlers.mask_saved(label, value, *parts)
        assert error.value.message == "Open a slot's mask with 'Edit mask' first."
    assert len(Handlers.mask_saved("face", staged, *parts)) == 3 * len(PART_LABELS)


def test_a_json_request_applies_its_masks_and_names_each_problem(handlers, tmp_path) -> None:
    face, mask, pose, corrupt = tmp_path / "face.png", tmp_path / "m.png", tmp_path / "pose.png", tmp_path / "bad.png"
    face_part().reference.save(face)
    rectangle_mask((48, 64), (0.0, 0.0, 0.5, 1.0)).save(mask)
    densepose_image().save(pose)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    files = [str(face), str(mask), str(pose), str(corrupt)]
    request = {"appearance": {"face": "face.png"}, "mask": {"face": "m.png"}, "structure": {"densepose": "pose.png"},
               "seed": 3, "steps": 2, "height": 64, "width": 48}  # fmt: skip

    def generated(text: str | None, sent: list[str]) -> np.ndarray:
        gallery, *_ = asyncio.run(handlers.generate_from_json(text, sent, gr.Request(session_hash="api"), gr.Progress()))
        return np.asarray(Image.open(gallery[0][0]), dtype=int)

    masked, unmasked = generated(json.dumps(request), files), generated(json.dumps({**request, "mask": {}}), files)
    assert np.abs(masked - unmasked).max() > 0  # the mask sent is used
    for text, sent, message in [
        (None, files, "The request is not valid JSON (Expecting value at line 1, column 1)."),
        ("[1]", files, "The request must be a JSON object (parts2whole.request's form)."),
        (json.dumps(request), [], "The request's mask 'face' names 'm.png', which is not among the files sent (none)."),
        (json.dumps({**request, "mask": {"face": "bad.png"}}), files, "The mask 'face' (bad.png)"),
        (json.dumps({**request, "mask": ["m.png"]}), files, "'mask' must map names to image paths."),
        (json.dumps({**request, "structure": {}}), files, "Add a pose: upload a DensePose map or pick one from the pose gallery."),
    ]:
        with pytest.raises(gr.Error) as error:
            generated(text, sent)
        assert error.value.message.startswith(message), error.value.message


def test_an_uploaded_reference_gets_segformers_mask_of_its_label_or_a_warning(handlers) -> None:
    """The slot's mask is SegFormer's for that label (the masker run here on the stored reference);
    where SegFormer finds no such part, a warning and the whole image."""
    part, _, whole = handlers.reference_uploaded("hair or headwear", noise_image(4, (300, 400)))  # large: not upscaled
    expected = handlers.models.masker()(part.reference, "hair or headwear")
    assert np.asarray(expected).any() and whole is False
    np.testing.assert_array_equal(np.asarray(part.mask), np.asarray(expected))
    with pytest.warns(UserWarning, match=re.escape("No face was found in the image: paint the part with 'Edit mask', or keep")):
        part, _, whole = handlers.reference_uploaded("face", noise_image(5, (300, 400)))
    assert part.mask is None and whole is True



def test_whole_image_ticked_drops_the_slots_mask_and_an_empty_prompt_stays_empty(handlers) -> None:
    face = face_part().reference
    masked = Part(face, rectangle_mask(face.size, (0.0, 0.0, 0.5, 1.0)))
    images = {}
    for name, slot in (("whole", (masked, True)), ("no mask", (Part(face), True)), ("masked", (masked, False))):
        gallery, _, texts, _, _ = run_generation(handlers, *generate_args({"face": slot}, densepose_image(), prompt=None))
        images[name] = np.asarray(Image.open(gallery[0][0]), dtype=int)
        settings_written = json.loads(texts[0])
        assert settings_written["prompt"] == "" and settings_written["negative_prompt"] == ""
        assert ("mask" in settings_written and "face" in settings_written["mask"]) == (name == "masked")
    assert np.array_equal(images["whole"], images["no mask"]) and np.abs(images["whole"] - images["masked"]).max() > 0
    _, _, texts, _, _ = run_generation(handlers, *generate_args({"face": (Part(face), True)}, densepose_image(), negative_prompt="blurry"))
    assert json.loads(texts[0])["negative_prompt"] == "blurry"


def test_the_mask_overlay_paints_above_half_grey_in_the_brush_colour() -> None:
    mask = Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8), mode="L")
    overlay = mask_overlay(mask)
    assert overlay.mode == "RGBA"
    expected = [(0, 0, 0, 0), (0, 0, 0, 0), (*settings.MASK_COLOUR, 160), (*settings.MASK_COLOUR, 160)]
    assert [tuple(pixel) for pixel in np.asarray(overlay)[0]] == expected


@pytest.mark.parametrize(
    ("alpha", "expected"), [((255, 255), False), ((254, 255), True), ((0, 0), True), (None, False)]
)
def test_transparency_is_any_alpha_below_opaque(alpha, expected) -> None:
    if alpha is None:
        image = Image.new("RGB", (2, 1))
    else:
        image = Image.new("RGBA", (2, 1))
        image.putalpha(Image.fromarray(np.array([alpha], np.uint8), mode="L"))
    assert has_transparency(image) is expected


def test_the_pose_from_a_photo_handler_passes_the_generation_size_and_reports_failures(monkeypatch, capsys) -> None:
    """The handler's own logic, with the body fitting (MediaPipe, tested in test_pose_from_photo)
    replaced: sizes as whole numbers, the person's frame, the map and its preview, the notices."""
    fitted_map = densepose_image((48, 64))
    calls = []

    class Fitted:
        def densepose(self) -> Image.Image:
            return fitted_map

    def fit(photo, size, frame):
        calls.append((photo, size, frame))
        return Fitted()

    monkeypatch.setattr(from_photo, "pose_from_photo", fit)
    photo = noise_image(0, (30, 40))
    assert Handlers.pose_from_photo(None, 64.0, 48.0) == (gr.skip(), gr.skip()) and calls == []
    iuv, preview = Handlers.pose_from_photo(photo, 64.0, 48.0)
    assert calls == [(photo, (48, 64), "person")] and all(type(value) is int for value in calls[0][1])
    assert iuv is fitted_map
    np.testing.assert_array_equal(np.asarray(preview), np.asarray(densepose_preview(fitted_map)))
    assert "Pose from the photo: an approximation of DensePose" in capsys.readouterr().out
    for error in (ValueError("No person was found in the photo."), ImportError("The pose from a photo needs MediaPipe.")):

        def failing(photo, size, frame, error=error):
            raise error

        monkeypatch.setattr(from_photo, "pose_from_photo", failing)
        with pytest.warns(UserWarning, match=re.escape(f"{error} The pose is unchanged.")):
            assert Handlers.pose_from_photo(photo, 64.0, 48.0) == (gr.skip(), gr.skip())


def test_a_page_load_removes_old_runs_and_marks_the_page_ready(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(settings, "OUTPUT_DIR", tmp_path / "outputs")
    old, recent = (tmp_path / "outputs" / "visitor" / name for name in ("old", "recent"))
    for run in (old, recent):
        run.mkdir(parents=True)
    long_ago = time.time() - settings.OUTPUT_MAX_AGE - 60
    os.utime(old, (long_ago, long_ago))
    assert Handlers.page_loaded() == '<span class="ready"></span>'
    assert not old.exists() and recent.is_dir()


def test_progress_shows_loading_then_each_step_and_the_run_lies_in_the_visitors_folder(handlers) -> None:
    shown = []
    gallery, *_ = run_generation(
        handlers, *generate_args({"face": (face_part(), True)}, densepose_image()), session="visitor-7",
        progress=lambda value, desc: shown.append((value, desc)),
    )  # fmt: skip
    assert shown == [(0, "Loading the model (first time only) ..."), ((1, 2), "Denoising"), ((2, 2), "Denoising")]
    assert Path(gallery[0][0]).parent.parent == settings.OUTPUT_DIR / "visitor-7"


def test_a_corrupt_upscaler_file_is_said_and_small_uploads_go_on_unscaled(demo_weights, tmp_path, capsys) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(demo_weights, weights)
    models = Models(weights, "cpu", torch.float32)
    models.realesrgan_file().write_text("<html>Not found</html>")  # a download that saved an error page
    fetch = f"`python download_weights.py --only realesrgan --dir {weights}`"
    models.preload()  # the demo still starts
    (said,) = re.findall(r"^Not loaded: (.*)$", capsys.readouterr().err, re.MULTILINE)
    readable = rf"{re.escape(str(models.realesrgan_file()))} is not a readable Real-ESRGAN checkpoint \(\w+\)\."
    assert re.fullmatch(rf"{readable} Fetch it again: {re.escape(fetch)}\.", said)
    corrupt = Handlers(models, [], [])
    with pytest.warns(UserWarning, match=f"^{re.escape(said)} The face image is used as it is.$"):
        part, _, _ = corrupt.reference_uploaded("face", noise_image(4, (40, 30)))
    assert part.reference.size == (40, 30)
    with pytest.raises(gr.Error) as refused:
        corrupt.upscale("face", part)
    assert refused.value.message == said


@pytest.mark.parametrize("control", ["left_elbow", "girth", "yaw"])  # a joint (the pose), the build, the camera
def test_each_kind_of_pose_maker_slider_changes_the_map(control) -> None:
    values = control_values("arms out")
    index = [c.name for c in CONTROLS].index(control)
    moved = list(values)
    moved[index] = CONTROLS[index].high if values[index] != CONTROLS[index].high else CONTROLS[index].low
    before, _ = Handlers.pose_made("arms out", 128, 96, *values)
    after, _ = Handlers.pose_made("arms out", 128, 96, *moved)
    assert np.abs(np.asarray(after, dtype=int) - np.asarray(before, dtype=int)).max() > 0


def test_a_random_seed_is_drawn_from_the_whole_range(monkeypatch) -> None:
    """0 to MAX_SEED, both ends included (the seed box's range)."""
    monkeypatch.setattr(random, "randrange", lambda stop: stop - 1)
    assert Handlers.random_seed() == MAX_SEED


def test_an_upload_that_cannot_be_read_is_named_as_the_user_knows_it(tmp_path) -> None:
    corrupt = tmp_path / "9f3a.png"
    corrupt.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=f"^The pose: there is no file {re.escape(repr(str(tmp_path / 'gone.png')))}"):
        read_upload(str(tmp_path / "gone.png"), "The pose")
    with pytest.raises(ValueError, match="^The pose: 'holiday.png' is not a readable image"):
        read_upload({"path": str(corrupt), "orig_name": "holiday.png"}, "The pose")
    with pytest.raises(ValueError, match=f"^The pose: {re.escape(repr(str(corrupt)))} is not a readable image"):
        read_upload({"path": str(corrupt)}, "The pose")  # no original name: the path as it is


def test_a_notice_says_when_only_the_first_of_two_frames_is_used(capsys) -> None:
    image = Image.new("RGB", (4, 4))
    say_if_frames_were_dropped(image, "The pose")
    image.info[FRAMES] = 2
    say_if_frames_were_dropped(image, "The pose")
    assert capsys.readouterr().out.count("The pose has 2 frames (an animation or a multi-page file): the first is used.") == 1
