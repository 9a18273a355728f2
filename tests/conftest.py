"""Fixtures: a tiny checkpoint in the released layout (built once per session) and test inputs."""

import json
import os
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut (docs/testing.md, the mutation score), the quickest tests first: a mutant's run
    stops at its first failing test, so a killed mutant then costs seconds, not its slowest test."""
    stats = Path("mutmut-stats.json")
    if "MUTANT_UNDER_TEST" not in os.environ or not stats.is_file():
        return
    duration = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: duration.get(item.nodeid, 0.0))
