"""The demo as a real process, driven through gradio_client like any API user."""

import time

import pytest
from app_server import (
    REPO,
    running_app,  # noqa: F401  (fixture)
    start_app,
)
from gradio_client import Client, handle_file
from PIL import Image

from parts2whole.labels import LABEL_FOLDERS, PART_LABELS

EXAMPLE = REPO / "examples" / "top_and_trousers"


def empty_slots() -> list:
    return [value for _ in PART_LABELS for value in ({"background": None, "layers": [], "composite": None}, "Whole image")]


def as_input(editor: dict) -> dict:
    """An ImageEditor value the client received, as one to send back."""
    return {
        "background": handle_file(editor["background"]),
        "layers": [handle_file(layer) for layer in editor["layers"]],
        "composite": None,
    }


def test_upload_parts_and_generate(running_app) -> None:  # noqa: F811
    url, outputs, _ = running_app
    client = Client(url, verbose=False)
    slots = empty_slots()
    for label in ("face", "upper body clothes"):
        editor, mode = client.predict(
            handle_file(str(EXAMPLE / f"{LABEL_FOLDERS[label]}.png")), api_name=f"/reference_{LABEL_FOLDERS[label]}"
        )
        index = 2 * PART_LABELS.index(label)
        slots[index : index + 2] = [as_input(editor), "Whole image"]
    started = time.perf_counter()
    gallery, seed, settings_text, archive = client.predict(
        *slots,
        handle_file(str(REPO / "examples" / "poses" / "standing.png")),
        "a person",
        "",
        5,
        False,
        2,
        7.5,
        256,
        256,
        1,
        "DDIM",
        api_name="/generate",
    )
    print(f"first image after {time.perf_counter() - started:.1f} s")
    assert seed == 5 and '"seed": 5' in settings_text
    assert Image.open(gallery[0]["image"]).size == (256, 256)
    assert archive.endswith(".zip")
    assert any(outputs.glob("*/result.png"))


def test_bad_input_comes_back_as_a_sentence(running_app) -> None:  # noqa: F811
    client = Client(running_app[0], verbose=False)
    with pytest.raises(Exception, match="Add at least one part"):
        client.predict(*empty_slots(), handle_file(str(REPO / "examples" / "poses" / "standing.png")),
                       "", "", 0, False, 2, 7.5, 256, 256, 1, "DDIM", api_name="/generate")  # fmt: skip
    # the app still serves after the failure
    editor, _ = client.predict(handle_file(str(EXAMPLE / "face.png")), api_name="/reference_face")
    assert editor["background"]


def test_app_starts_without_weights_and_says_what_to_fetch(tmp_path) -> None:
    no_mini_model = str(tmp_path / "no_mini_model")
    process, url, _ = start_app(tmp_path / "no_weights", tmp_path / "outputs", tmp_path / "app.log", P2W_MINI_MODEL=no_mini_model)
    try:
        page = Client(url, verbose=False)
        slots = empty_slots()
        slots[2:4] = [{"background": handle_file(str(EXAMPLE / "face.png")), "layers": [], "composite": None}, "Whole image"]
        with pytest.raises(Exception, match="python download_weights.py --only parts2whole"):
            page.predict(*slots, handle_file(str(REPO / "examples" / "poses" / "standing.png")),
                         "", "", 0, False, 2, 7.5, 256, 256, 1, "DDIM", api_name="/generate")  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Generation is off: the Parts2Whole weights are missing" in (tmp_path / "app.log").read_text()
