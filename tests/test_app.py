"""The demo as a real process, driven through gradio_client like any API user: the stateful page
endpoints, the stateless `/generate_request`, concurrency, cancel, privacy and clean-up."""

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from app_server import (
    REPO,
    running_app,  # noqa: F401  (fixture)
    start_app,
    stop_app,
)
from gradio_client import Client, handle_file
from PIL import Image

from parts2whole.labels import PART_LABELS
from parts2whole.testing.tiny_models import write_demo_weights

EXAMPLE = REPO / "examples" / "top_and_trousers"
POSE = REPO / "examples" / "poses" / "standing.png"
PANEL = ("a person", "", 5, False, 2, 7.5, 256, 256, 1, "DDIM")
"""/generate's values after the six "Whole image" boxes and the pose (GENERATE_INPUTS' order)."""


def connect(url: str, **options) -> Client:
    """A client that waits as long as a loaded machine needs (httpx's default is 5 s)."""
    return Client(url, verbose=False, httpx_kwargs={"timeout": 120}, **options)


def json_request(seed: int, steps: int = 2, **settings) -> str:
    return json.dumps({"appearance": {"face": "face.png", "upper body clothes": "upper_body_clothes.png"},
                       "structure": {"densepose": "standing.png"}, "seed": seed, "steps": steps,
                       "height": 64, "width": 48, **settings})  # fmt: skip


REQUEST_FILES = [handle_file(str(EXAMPLE / "face.png")), handle_file(str(EXAMPLE / "upper_body_clothes.png")), handle_file(str(POSE))]


def generate_json(client: Client, seed: int, **settings) -> np.ndarray:
    gallery, *_ = client.predict(json_request(seed, **settings), REQUEST_FILES, api_name="/generate_request")
    return np.asarray(Image.open(gallery[0]["image"]))


def test_upload_parts_and_generate(running_app) -> None:  # noqa: F811
    """The page's own endpoints: each upload fills its slot in this client's session, Generate reads them."""
    url, outputs, _ = running_app
    client = connect(url)
    wholes = [False] * len(PART_LABELS)
    for label in ("face", "upper body clothes"):
        name = label.replace(" ", "_")
        _, whole = client.predict(handle_file(str(EXAMPLE / f"{name}.png")), api_name=f"/reference_{name}")
        wholes[PART_LABELS.index(label)] = whole
    started = time.perf_counter()
    gallery, seed, settings_text, archive = client.predict(*wholes, handle_file(str(POSE)), *PANEL, api_name="/generate")
    print(f"first image after {time.perf_counter() - started:.1f} s")
    assert seed == 5 and '"seed": 5' in settings_text
    assert Image.open(gallery[0]["image"]).size == (256, 256)
    assert archive.endswith(".zip")
    assert any(outputs.glob("*/*/result.png"))  # OUTPUT_DIR/SESSION/RUN


def test_bad_input_comes_back_as_a_sentence(running_app) -> None:  # noqa: F811
    client = connect(running_app[0])
    with pytest.raises(Exception, match="Add at least one part"):
        client.predict(*[True] * len(PART_LABELS), handle_file(str(POSE)), *PANEL, api_name="/generate")
    with pytest.raises(Exception, match=re.escape("The number of steps must be from 1 to 100; got 500.")):
        client.predict(json_request(1, steps=500), REQUEST_FILES, api_name="/generate_request")
    # the app still serves after the failures
    preview, _ = client.predict(handle_file(str(EXAMPLE / "face.png")), api_name="/reference_face")
    assert preview


def test_eight_clients_at_once_get_their_solo_images(running_app) -> None:  # noqa: F811
    """The app runs 4 generations at once (P2W_GENERATION_CONCURRENCY=4); each equals its run alone."""
    url = running_app[0]
    seeds = list(range(10, 18))
    solo = {seed: generate_json(connect(url), seed) for seed in seeds}
    clients = [connect(url) for _ in seeds]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(seeds)) as pool:
        together = dict(zip(seeds, pool.map(generate_json, clients, seeds), strict=True))
    print(f"8 clients answered in {time.perf_counter() - started:.1f} s")
    assert all(np.array_equal(together[seed], solo[seed]) for seed in seeds)
    assert len({solo[seed].tobytes() for seed in seeds}) == len(seeds)


def test_a_cancelled_job_stops_and_the_next_generation_is_exact(running_app) -> None:  # noqa: F811
    url = running_app[0]
    client = connect(url)
    expected = generate_json(client, 7)
    job = client.submit(json_request(8, steps=100, height=256, width=256), REQUEST_FILES, api_name="/generate_request")
    while job.status().code.value not in ("PROCESSING", "PROGRESS"):
        time.sleep(0.2)
    time.sleep(1.0)
    job.cancel()
    started = time.perf_counter()
    assert np.array_equal(generate_json(connect(url), 7), expected)
    print(f"the generation after the cancel answered in {time.perf_counter() - started:.1f} s")


def test_a_session_cannot_fetch_another_sessions_files(running_app) -> None:  # noqa: F811
    url, outputs, _ = running_app
    owner = connect(url, download_files=False)
    gallery, *_ = owner.predict(json_request(21), REQUEST_FILES, api_name="/generate_request")
    served = gallery[0]["image"]["url"]
    on_disk = next(path for path in outputs.glob("*/*/result.png") if path.stat().st_mtime > time.time() - 60)
    # Gradio serves its own copy under a SHA-256 of the content, not the outputs folder's path
    assert re.search(r"/[0-9a-f]{64}/", served) and str(on_disk) not in served
    for path in (on_disk, on_disk.parent.with_suffix(".zip"), on_disk.parent / "face.png"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=10)
        assert refused.value.code == 403


def test_outputs_are_removed_at_shutdown(tmp_path) -> None:
    weights = write_demo_weights(tmp_path / "pretrained_weights")
    process, url, _ = start_app(weights, tmp_path / "outputs", tmp_path / "app.log")
    try:
        generate_json(connect(url), 1)
        assert list((tmp_path / "outputs").glob("*/*/result.png"))
    finally:
        stop_app(process)
    assert not list((tmp_path / "outputs").iterdir())


def test_app_starts_without_weights_and_says_what_to_fetch(tmp_path) -> None:
    no_mini_model = str(tmp_path / "no_mini_model")
    process, url, _ = start_app(tmp_path / "no_weights", tmp_path / "outputs", tmp_path / "app.log", P2W_MINI_MODEL=no_mini_model)
    try:
        with pytest.raises(Exception, match="python download_weights.py --only parts2whole"):
            connect(url).predict(json_request(1), REQUEST_FILES, api_name="/generate_request")
    finally:
        stop_app(process)
    assert "Generation is off: the Parts2Whole weights are missing" in (tmp_path / "app.log").read_text()
