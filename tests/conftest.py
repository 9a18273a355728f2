"""Fixtures: a tiny checkpoint in the released layout (built once per session) and test inputs."""

from pathlib import Path

import pytest

from parts2whole import Parts2WholePipeline
from parts2whole.testing.tiny_models import write_released_checkpoint


@pytest.fixture(scope="session")
def released_checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("released") / "parts2whole"
    written = write_released_checkpoint(folder)
    return folder, written


@pytest.fixture
def pipe(released_checkpoint) -> Parts2WholePipeline:
    pipeline = Parts2WholePipeline.from_pretrained(released_checkpoint[0])
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
