"""`python -m parts2whole` on JSON and JSONL inputs in the authors' format."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import HEIGHT, WIDTH, densepose_image, make_parts
from parts2whole.cli import main

REPO = Path(__file__).resolve().parents[1]


def write_input(folder: Path, **settings) -> dict:
    """Reference images, masks and a pose under `folder`/images, and an input dict pointing at them."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    appearance, masks = make_parts(2, with_masks=True)
    entry = {"appearance": {}, "mask": {}, "structure": {"densepose": "images/pose.png"}}
    for label, image in appearance.items():
        name = label.replace(" ", "_")
        image.save(images / f"{name}.jpg")
        masks[label].save(images / f"{name}_mask.png")
        entry["appearance"][label] = f"images/{name}.jpg"
        entry["mask"][label] = f"images/{name}_mask.png"
    densepose_image().save(images / "pose.png")
    entry.update({"height": HEIGHT, "width": WIDTH, "steps": 2, "seed": 7}, **settings)
    return entry


def test_json_input_writes_images_and_rerunnable_settings(released_checkpoint, tmp_path, capsys) -> None:
    entry = write_input(tmp_path, prompt="a person", num_images=2)
    (tmp_path / "job.json").write_text(json.dumps(entry))
    weights = str(released_checkpoint[0])
    assert main([str(tmp_path / "job.json"), "--out", str(tmp_path / "out"), "--weights", weights, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "out" / "job_0.png"), str(tmp_path / "out" / "job_1.png")]
    first = Image.open(tmp_path / "out" / "job_0.png")
    assert first.size == (WIDTH, HEIGHT)
    settings = json.loads((tmp_path / "out" / "job_1.json").read_text())
    assert settings["seed"] == 8 and settings["num_images"] == 1 and settings["prompt"] == "a person"
    assert settings["structure"]["densepose"] == os.path.join("..", "images", "pose.png")

    # the settings beside image 1 make image 1 again
    again = tmp_path / "again"
    assert main([str(tmp_path / "out" / "job_1.json"), "--out", str(again), "--weights", weights, "--device", "cpu"]) == 0
    remade = np.asarray(Image.open(again / "job_1.png"), dtype=int)
    original = np.asarray(Image.open(tmp_path / "out" / "job_1.png"), dtype=int)
    assert np.abs(remade - original).max() <= 1


def test_jsonl_input_runs_every_line_with_one_process(released_checkpoint, tmp_path) -> None:
    lines = [write_input(tmp_path, prompt="first"), write_input(tmp_path, prompt="second", scheduler="dpm++2m")]
    (tmp_path / "batch.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "parts2whole", str(tmp_path / "batch.jsonl"), "--out", str(tmp_path / "out"),
         "--weights", str(released_checkpoint[0]), "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "batch_0001.json", "batch_0001.png", "batch_0002.json", "batch_0002.png"
    ]
    assert json.loads((tmp_path / "out" / "batch_0002.json").read_text())["scheduler"] == "dpm++2m"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"appearance": {"face": "f.png"}, "colour": 1}', r"unknown key\(s\) \['colour'\]"),
        ('{"appearance": {"face": "f.png"}, "scheduler": "heun"}', "unknown scheduler 'heun'"),
        ('{"appearance": ["f.png"]}', "'appearance' must map names to image paths"),
    ],
)
def test_bad_input_files_are_explained(tmp_path, capsys, content, message) -> None:
    (tmp_path / "bad.json").write_text(content)
    assert main([str(tmp_path / "bad.json"), "--out", str(tmp_path / "out"), "--weights", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error


def test_missing_weights_name_the_fetch_command(tmp_path, capsys) -> None:
    entry = write_input(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(entry))
    assert main([str(tmp_path / "job.json"), "--out", str(tmp_path / "out"), "--weights", str(tmp_path / "none")]) == 2
    assert "python download_weights.py --only parts2whole" in capsys.readouterr().err


def test_bad_generation_input_is_reported_and_the_rest_runs(released_checkpoint, tmp_path, capsys) -> None:
    good = write_input(tmp_path)
    bad = {**good, "appearance": {"face": "images/nothing.png"}, "mask": {}}
    (tmp_path / "mixed.jsonl").write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    code = main([str(tmp_path / "mixed.jsonl"), "--out", str(tmp_path / "out"), "--weights", str(released_checkpoint[0]), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    assert "error in input 1: the 'face' image: there is no file" in captured.err
    assert captured.out.strip().endswith("mixed_0002.png")


def test_unavailable_device_is_explained(released_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    entry = write_input(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(entry))
    args = [str(tmp_path / "job.json"), "--out", str(tmp_path / "out"), "--weights", str(released_checkpoint[0])]
    assert main(args + ["--device", "cuda"]) == 2
    assert "no usable CUDA GPU; use --device cpu" in capsys.readouterr().err
    assert main(args + ["--device", "tpu9"]) == 2
    assert "Unknown device 'tpu9'" in capsys.readouterr().err
