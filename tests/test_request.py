"""The one generation request: defaults, JSON round trip, checks with their sentences; the demo's
output folders: per session, removed by age."""

import json
import os
import re
import time
from pathlib import Path

import pytest

from parts2whole.request import SETTING_DEFAULTS, GenerationRequest, Limits
from ui.outputs import is_returnable, new_run, remove_all_runs, remove_old_runs

PARTS = {"appearance": {"face": "parts/face.png"}, "structure": {"densepose": "pose.png"}}


def test_defaults_are_defined_once_and_a_model_may_replace_them() -> None:
    request = GenerationRequest.from_dict(PARTS, Path("/data"))
    assert {key: getattr(request, key) for key in SETTING_DEFAULTS} == SETTING_DEFAULTS
    assert (request.height, request.width, request.steps, request.guidance_scale, request.scheduler) == (768, 512, 50, 7.5, "ddim")
    mini = GenerationRequest.from_dict({**PARTS, "steps": 9}, Path("/data"), defaults={"height": 128, "width": 96, "steps": 25})
    assert (mini.height, mini.width, mini.steps) == (128, 96, 9)  # the request's own value beats the model's


def test_json_round_trip_with_paths_relative_to_the_file(tmp_path) -> None:
    request = GenerationRequest.from_dict({**PARTS, "mask": {"face": "parts/face_mask.png"}, "seed": 4}, tmp_path / "in")
    assert request.appearance["face"] == str(tmp_path / "in" / "parts" / "face.png")
    text = request.to_json(relative_to=tmp_path / "out")
    assert json.loads(text)["appearance"]["face"] == os.path.join("..", "in", "parts", "face.png")
    assert list(json.loads(text))[:3] == ["appearance", "mask", "structure"]  # the authors' input_dict first
    assert GenerationRequest.from_json(text, tmp_path / "out") == request
    second = request.image(1)
    assert (second.seed, second.num_images) == (5, 1)
    assert GenerationRequest.from_dict(PARTS).with_seed().seed is not None and request.with_seed() is request


def test_whole_numbers_from_a_slider_become_ints() -> None:
    request = GenerationRequest.from_dict({**PARTS, "height": 256.0, "steps": 3.0, "seed": 7.0})
    assert (request.height, request.steps, request.seed) == (256, 3, 7)
    assert all(type(value) is int for value in (request.height, request.steps, request.seed))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "Unknown key(s) ['colour']; the keys are ['appearance', 'mask', 'structure', 'prompt'"),
        ({"appearance": {}}, "No parts given"),
        ({"appearance": {"hat": "a.png"}}, "Unknown part label(s) 'hat'"),
        ({"appearance": ["a.png"]}, "'appearance' must map names to image paths."),
        ({"mask": {"shoes": "m.png"}}, "A mask is given for 'shoes' but there is no 'shoes' part."),
        ({"structure": {}}, "Add a pose: 'structure' must hold the DensePose map"),
        ({"prompt": None}, "The prompt must be text; got None."),
        ({"seed": -1}, "The seed must be from 0 to 2147483647; got -1."),
        ({"seed": 2**31}, "The seed must be from 0 to 2147483647; got 2.14748e+09."),
        ({"height": 100}, "The height must be a multiple of 8; got 100."),
        ({"width": 4}, "The width must be from 8 to 4096; got 4."),
        ({"width": True}, "The width must be a whole number from 8 to 4096; got True."),
        ({"steps": 0}, "The number of steps must be from 1 to 1000; got 0."),
        ({"steps": "20"}, "The number of steps must be a whole number from 1 to 1000; got '20'."),
        ({"num_images": 1.5}, "The number of images must be a whole number from 1 to 16; got 1.5."),
        ({"guidance_scale": float("inf")}, "The guidance scale must be a number (1 turns guidance off); got inf."),
        ({"scheduler": "euler"}, "Unknown scheduler 'euler'; choose one of ddim, dpm++2m."),
    ],
)
def test_each_bad_value_gets_its_sentence(change, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        GenerationRequest.from_dict({**PARTS, **change})


def test_limits_are_a_servers_own() -> None:
    with pytest.raises(ValueError, match=re.escape("The number of steps must be from 1 to 100; got 500.")):
        GenerationRequest.from_dict({**PARTS, "steps": 500}, limits=Limits(max_side=1024, max_steps=100, max_images=4))
    assert GenerationRequest.from_dict({**PARTS, "steps": 500}).steps == 500
    with pytest.raises(ValueError, match="Not valid JSON"):
        GenerationRequest.from_json("{")


def test_runs_are_per_session_and_removed_by_age(tmp_path) -> None:
    first, second = new_run(tmp_path, "alice"), new_run(tmp_path, "../bob")
    assert first.parent == tmp_path / "alice" and second.parent == tmp_path / "bob"  # no way out of the folder
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{32}", first.name)
    (tmp_path / "alice" / f"{first.name}.zip").write_bytes(b"zip")
    old = time.time() - 7200
    for path in (first, tmp_path / "alice" / f"{first.name}.zip"):
        os.utime(path, (old, old))
    assert remove_old_runs(tmp_path, max_age=0) == []  # 0 keeps everything
    removed = remove_old_runs(tmp_path, max_age=3600)
    assert sorted(path.name for path in removed) == sorted([first.name, f"{first.name}.zip"])
    assert not (tmp_path / "alice").exists() and second.is_dir()
    (tmp_path / "notes.txt").write_text("kept")
    remove_all_runs(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_outputs_must_be_where_gradio_returns_files_from(tmp_path) -> None:
    assert is_returnable(tmp_path) and is_returnable(Path("outputs"))
    assert not is_returnable(Path("/usr/share/outputs"))
