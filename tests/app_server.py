"""`python app.py` started as a real process on a free port, with tiny weights (a pytest fixture)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from parts2whole.testing.tiny_models import write_demo_weights

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(
    weights: Path, outputs: Path | None, log: Path, cwd: Path = REPO, **env_vars: str
) -> tuple[subprocess.Popen, str, float]:
    """Start the demo in `cwd`; returns the process, its URL and the seconds until its page answered.
    `outputs` None: the app's own default output folder (`outputs`, relative to `cwd`)."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env_vars}
    env.pop("P2W_OUTPUT_DIR", None)
    if outputs is not None:
        env["P2W_OUTPUT_DIR"] = str(outputs)
    command = [sys.executable, str(REPO / "app.py"), "--weights", str(weights), "--port", str(port), "--device", "cpu"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - started < 180:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - started
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"app.py did not answer within 180 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    """(url, outputs folder, seconds to answer) of a demo serving tiny weights, 4 generations at once."""
    root = tmp_path_factory.mktemp("app")
    weights = write_demo_weights(root / "pretrained_weights")
    process, url, seconds = start_app(weights, root / "outputs", root / "app.log", P2W_GENERATION_CONCURRENCY="4")
    print(f"\npython app.py answered after {seconds:.1f} s")
    yield url, root / "outputs", seconds
    stop_app(process)


def stop_app(process: subprocess.Popen) -> None:
    """Stop the demo as a service manager does (SIGTERM: it shuts down and removes its outputs)."""
    process.terminate()
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
