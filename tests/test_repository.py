"""The repository carries what its scripts name: a kept model that .gitignore hid would leave a
fresh clone's scripts pointing at nothing (it happened to run 11, docs/mini_model.md)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_FOLDER = re.compile(r"runs/[\w.-]+/final|pretrained_weights/parts2whole-mini\b")
"""A kept run, or the shipped mini model (docs/mini_model.md)."""


def test_every_model_the_scripts_start_from_is_in_the_checkout() -> None:
    named = {
        (path.relative_to(ROOT), folder)
        for path in [*ROOT.glob("scripts/*.sh"), *ROOT.glob("bench/*.py")]
        for folder in MODEL_FOLDER.findall(path.read_text())
    }
    assert named, "no script names a kept model: update this test with the scripts"
    missing = [f"{script} names {folder}" for script, folder in sorted(named) if not (ROOT / folder / "model_index.json").is_file()]
    assert not missing, missing
