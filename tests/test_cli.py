"""`python -m parts2whole` on JSON and JSONL inputs in the authors' format."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from PIL import Image

from parts2whole import Parts2WholePipeline, cli, runtime
from parts2whole.cli import main
from parts2whole.testing.inputs import HEIGHT, WIDTH, densepose_image, make_parts

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
        [
            sys.executable,
            "-m",
            "parts2whole",
            str(tmp_path / "batch.jsonl"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(released_checkpoint[0]),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "batch_0001.json",
        "batch_0001.png",
        "batch_0002.json",
        "batch_0002.png",
    ]
    assert json.loads((tmp_path / "out" / "batch_0002.json").read_text())["scheduler"] == "dpm++2m"


def test_the_chosen_scheduler_is_the_one_that_runs(released_checkpoint, tmp_path, capsys) -> None:
    """The image written for "dpm++2m" is the one DPM-Solver++ 2M makes (the pipeline called here
    with that scheduler, same seed), and not the DDIM one."""
    weights = str(released_checkpoint[0])
    written = {}
    for name in ("ddim", "dpm++2m"):
        entry = write_input(tmp_path, scheduler=name)
        (tmp_path / f"{name}.json").write_text(json.dumps(entry))
        assert main([str(tmp_path / f"{name}.json"), "--out", str(tmp_path / "out"), "--weights", weights, "--device", "cpu"]) == 0
        written[name] = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"), dtype=int)
    pipe = Parts2WholePipeline.from_pretrained(weights)
    scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2)
    image = pipe(
        appearance={label: tmp_path / path for label, path in entry["appearance"].items()},
        mask={label: tmp_path / path for label, path in entry["mask"].items()},
        structure={"densepose": tmp_path / entry["structure"]["densepose"]},
        height=HEIGHT, width=WIDTH, num_inference_steps=2, generator=torch.Generator().manual_seed(7), scheduler=scheduler,
    ).images[0]  # fmt: skip
    assert np.abs(written["dpm++2m"] - np.asarray(image, dtype=int)).max() <= 1
    assert np.abs(written["dpm++2m"] - written["ddim"]).max() > 10


def test_fast_preset_applies_to_inputs_that_set_no_scheduler_and_steps(released_checkpoint, tmp_path, capsys) -> None:
    """--fast: DPM++ 2M at 2/5 of the default steps (50 -> 20) where an input sets neither; an input's
    own settings win."""
    plain = {key: value for key, value in write_input(tmp_path).items() if key != "steps"}
    own = write_input(tmp_path, steps=3, scheduler="ddim")
    (tmp_path / "batch.jsonl").write_text(json.dumps(plain) + "\n" + json.dumps(own) + "\n")
    weights = str(released_checkpoint[0])
    assert main([str(tmp_path / "batch.jsonl"), "--out", str(tmp_path / "out"), "--weights", weights, "--device", "cpu", "--fast"]) == 0
    made = [json.loads((tmp_path / "out" / f"batch_000{n}.json").read_text()) for n in (1, 2)]
    assert [(m["scheduler"], m["steps"]) for m in made] == [("dpm++2m", 20), ("ddim", 3)]


def free_port() -> int:
    """A port for the processes' rendezvous, so that concurrent runs do not meet on accelerate's default."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_accelerate_launch_shares_the_lines_and_writes_what_one_process_writes(released_checkpoint, tmp_path) -> None:
    prompts = ["first", "second", "third", "fourth"]
    lines = [write_input(tmp_path, prompt=prompt, seed=seed) for seed, prompt in enumerate(prompts, start=3)]
    lines[1]["scheduler"] = "dpm++2m"
    # line 2 fails, in the second process: its error and failure must reach the output and the exit code
    lines.insert(1, {**lines[0], "appearance": {"face": "images/nothing.png"}, "mask": {}})
    (tmp_path / "batch.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    common = [str(tmp_path / "batch.jsonl"), "--weights", str(released_checkpoint[0])]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each launched process runs: float sums in the same order, the same bytes
    try:
        assert main(common + ["--out", str(tmp_path / "single"), "--device", "cpu"]) == 1
    finally:
        torch.set_num_threads(threads)

    # `--multi_gpu` is accelerate's torchrun launcher, which starts CPU processes where no GPU is
    # visible; `--cpu` alone starts one process (several need mpirun).
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        launch + ["-m", "parts2whole"] + common + ["--out", str(tmp_path / "multi")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.count("error in input 2: the 'face' image: there is no file") == 1, result.stderr
    assert "4 of 5 inputs made by 2 processes." in result.stderr
    # each line is made by exactly one process: every image is printed once
    names = [f"batch_{number:04d}" for number in (1, 3, 4, 5)]
    assert sorted(result.stdout.split()) == [str(tmp_path / "multi" / f"{name}.png") for name in names]
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == sorted(p.name for p in (tmp_path / "single").iterdir())
    for file in (tmp_path / "single").iterdir():
        assert (tmp_path / "multi" / file.name).read_bytes() == file.read_bytes(), file.name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Not valid JSON"),
        ('{"appearance": {"face": "f.png"}, "colour": 1}', r"Unknown key\(s\) \['colour'\]"),
        ('{"appearance": {"face": "f.png"}, "structure": {"densepose": "p.png"}, "scheduler": "heun"}', "Unknown scheduler 'heun'"),
        ('{"appearance": ["f.png"]}', "'appearance' must map names to image paths"),
        ('{"appearance": {}, "structure": {"densepose": "p.png"}}', "No parts given"),
        ('{"appearance": {"hat": "h.png"}}', "Unknown part label"),
    ],
)
def test_bad_input_files_are_explained(tmp_path, capsys, content, message) -> None:
    (tmp_path / "bad.json").write_text(content)
    assert main([str(tmp_path / "bad.json"), "--out", str(tmp_path / "out"), "--weights", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error


def test_missing_weights_name_the_fetch_command(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "MINI_MODEL_DIR", tmp_path / "no-mini-model")
    entry = write_input(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(entry))
    assert main([str(tmp_path / "job.json"), "--out", str(tmp_path / "out"), "--weights", str(tmp_path / "none")]) == 2
    assert "python download_weights.py --only parts2whole" in capsys.readouterr().err


def test_bad_generation_input_is_reported_and_the_rest_runs(released_checkpoint, tmp_path, capsys) -> None:
    good = write_input(tmp_path)
    bad = {**good, "appearance": {"face": "images/nothing.png"}, "mask": {}}
    (tmp_path / "mixed.jsonl").write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    code = main(
        [str(tmp_path / "mixed.jsonl"), "--out", str(tmp_path / "out"), "--weights", str(released_checkpoint[0]), "--device", "cpu"]
    )
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


def test_without_released_weights_the_mini_model_runs_at_its_own_defaults(released_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    mini = tmp_path / "parts2whole-mini"
    shutil.copytree(released_checkpoint[0], mini)
    (mini / runtime.DEFAULTS_FILE).write_text(
        json.dumps({"height": 40, "width": 24, "steps": 2, "guidance_scale": 3.0, "scheduler": "dpm++2m"})
    )
    monkeypatch.setattr(runtime, "MINI_MODEL_DIR", mini.resolve())
    entry = write_input(tmp_path)
    for setting in ("height", "width", "steps"):
        del entry[setting]
    (tmp_path / "job.json").write_text(json.dumps(entry))
    assert main([str(tmp_path / "job.json"), "--out", str(tmp_path / "out"), "--weights", str(tmp_path / "empty")]) == 0
    assert "parts2whole-mini, a small demo model trained on synthetic people" in capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "job.png").size == (24, 40)
    settings = json.loads((tmp_path / "out" / "job.json").read_text())
    assert (settings["steps"], settings["guidance_scale"], settings["scheduler"]) == (2, 3.0, "dpm++2m")


def test_out_of_gpu_memory_is_explained_and_the_next_line_runs(released_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    """A CUDA out-of-memory error in the UNet (raised by a forward hook, as a GPU would) on line 1."""
    loaded = cli.load_pipeline

    def load_with_one_failure(*args, **kwargs):
        pipe = loaded(*args, **kwargs)
        calls = []

        def fail_once(module, inputs):
            calls.append(1)
            if len(calls) == 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        pipe.unet.register_forward_pre_hook(fail_once)
        return pipe

    monkeypatch.setattr(cli, "load_pipeline", load_with_one_failure)
    entry = write_input(tmp_path)
    (tmp_path / "two.jsonl").write_text(json.dumps(entry) + "\n" + json.dumps(entry) + "\n")
    code = main([str(tmp_path / "two.jsonl"), "--out", str(tmp_path / "out"), "--weights", str(released_checkpoint[0]), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    assert "error in input 1: Out of GPU memory: try --low-vram, a smaller height and width, or fewer images.\n" in captured.err
    assert captured.out.strip().endswith("two_0002.png")
