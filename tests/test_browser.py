"""The demo in Debian's chromium, driven by Playwright: click an example and generate at a desktop
and a phone size, edit a mask, make a pose, and a fresh clone's demo generating with the shipped mini
model. Each step waits for the page's state, never retries.

Skipped outside CI when chromium is missing; in CI (.ci/run installs it) a missing browser fails.

Screenshots go to $P2W_SCREENSHOT_DIR when it is set (docs/screenshots/ for the record), else to
the test's temporary folder.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from app_server import (
    running_app,  # noqa: F401  (fixture)
    start_app,
    stop_app,
)
from playwright.sync_api import Page, sync_playwright

from parts2whole import runtime
from parts2whole.body.presets import CONTROLS, control_values

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP, PHONE = (1280, 800), (390, 844)


def set_slider(page: Page, elem_id: str, value: int) -> None:
    """Type into a slider's number box and wait until the page shows the value."""
    field = page.locator(f"#{elem_id} input[type=number]")
    field.wait_for(state="visible")
    field.fill(str(value))
    field.press("Tab")
    page.wait_for_function(f"document.querySelector('#{elem_id} input[type=number]')?.value === '{value}'", timeout=10_000)


def open_settings(page: Page) -> None:
    """Open the Settings accordion and wait until its sliders are mounted with their values (Gradio
    mounts a closed accordion's children on opening; typing before they hold their values is lost):
    the values in the page's config. Open it before an example fills the sliders: a value sent to a
    slider that is not mounted yet is applied when it mounts, and would overwrite what is typed then."""
    page.locator("#settings").click()
    for elem_id in ("steps", "height", "width"):
        page.wait_for_function(
            f"(() => {{ const shown = document.querySelector('#{elem_id} input[type=number]');"
            f" const given = window.gradio_config.components.find(c => c.props.elem_id === '{elem_id}').props.value;"
            f" return shown !== null && Number(shown.value) === given; }})()",
            timeout=20_000,
        )


def screenshot_folder(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("P2W_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@contextmanager
def open_page(url: str, size: tuple[int, int] = DESKTOP) -> Iterator[Page]:
    """The demo's page in chromium once its events are wired (the page's load event has answered)."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.goto(url)
        page.wait_for_selector("#page-ready .ready", state="attached", timeout=60_000)
        yield page
        browser.close()


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    if box is None:
        return False
    return box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"] and box["x"] + box["width"] <= viewport["width"]


def click_example(page: Page, index: int = 2) -> None:
    """Click an example ("top_and_trousers": face, hair, top, trousers, shoes) and wait until every
    slot, the pose and the prompt show it."""
    page.locator("#examples button.thumbnail-item").nth(index).click()
    page.wait_for_function("document.querySelector('#prompt textarea').value.startsWith('a person with')", timeout=30_000)
    for slot in ("hair-or-headwear", "face", "upper-body-clothes", "lower-body-clothes", "shoes"):
        page.wait_for_selector(f"#upload-{slot} img", timeout=30_000)
    page.wait_for_selector("#pose img", timeout=30_000)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_click_an_example_and_generate(running_app, tmp_path, size) -> None:  # noqa: F811
    shots = screenshot_folder(tmp_path)
    name = f"{size[0]}x{size[1]}"
    with open_page(running_app[0], size) as page:
        open_settings(page)  # before the example: see open_settings
        click_example(page)
        assert page.locator("#upload-whole-body-clothes img").count() == 0  # this example has no dress
        assert not page.locator("#whole-face input").is_checked()  # the face comes with its part mask
        assert in_view(page, "#generate"), f"Generate is not in view at {name} after an example is clicked"
        page.screenshot(path=shots / f"demo-{name}-example.png")

        set_slider(page, "steps", 2)
        set_slider(page, "height", 64)
        set_slider(page, "width", 64)
        page.locator("#generate").click()
        page.wait_for_selector("#results img", timeout=120_000)
        page.locator("#run-files").click()
        page.wait_for_function("(document.querySelector('#result-settings')?.innerText || '').includes('\"steps\": 2')", timeout=30_000)
        settings_text = page.locator("#result-settings").inner_text()
        assert '"height": 64' in settings_text and '"width": 64' in settings_text and '"upper body clothes"' in settings_text
        page.locator("#generate").scroll_into_view_if_needed()
        page.screenshot(path=shots / f"demo-{name}-result.png")


@pytest.fixture(scope="module")
def fresh_clone_app(tmp_path_factory):
    """`python app.py` as a fresh clone runs it: no weights fetched (so the shipped mini model), and the
    default output folder, `outputs` in the working directory. Yields (url, that folder)."""
    root = tmp_path_factory.mktemp("fresh-clone")
    process, url, _ = start_app(root / "no-weights", None, root / "app.log", cwd=root)
    yield url, root / "outputs"
    stop_app(process)


def test_a_fresh_clone_draws_an_example_with_the_mini_model(fresh_clone_app, tmp_path) -> None:
    """The README's first command without a download: the notice, an example generated at the mini
    model's own settings into the relative output folder, the result shown whole (a person is taller
    than the results box is wide)."""
    url, outputs = fresh_clone_app
    defaults = runtime.model_defaults(runtime.MINI_MODEL_DIR)
    with open_page(url) as page:
        assert "Running parts2whole-mini" in page.locator("body").inner_text()
        click_example(page)
        page.locator("#generate").click()
        page.wait_for_selector("#results img", timeout=120_000)
        page.locator("#run-files").click()
        page.wait_for_function("(document.querySelector('#result-settings')?.innerText || '').includes('seed')", timeout=30_000)
        settings_text = page.locator("#result-settings").inner_text()
        for key in ("height", "width", "steps", "guidance_scale"):
            assert f'"{key}": {defaults[key]}' in settings_text
        assert page.locator("#results img").first.evaluate("image => getComputedStyle(image).objectFit") == "contain"
        page.screenshot(path=screenshot_folder(tmp_path) / "demo-mini-model.png", full_page=True)
    assert any(outputs.glob("*/*/result.png"))


def test_edit_a_mask_in_place(running_app, tmp_path) -> None:  # noqa: F811
    """Edit mask opens the editor on the slot's reference and mask; a painted stroke is in the slot after Save."""
    shots = screenshot_folder(tmp_path)
    with open_page(running_app[0]) as page:
        click_example(page)
        before = page.locator("#upload-face img").get_attribute("src")
        page.locator("#edit-face").click()
        page.wait_for_selector("#mask-panel", state="visible", timeout=30_000)
        page.wait_for_selector("#mask-editor canvas", state="visible", timeout=30_000)
        page.wait_for_function("(() => { const r = document.querySelector('#mask-editor').getBoundingClientRect();"
                               " return r.top >= 0 && r.bottom <= window.innerHeight; })()", timeout=10_000)  # scrolled to
        page.wait_for_timeout(6000)  # the editor fetches and draws its background and layer after it is shown
        canvas = page.locator("#mask-editor canvas").first.bounding_box()
        # a stroke across the neck, below the face's mask (the reference fills the middle of the canvas)
        page.mouse.move(canvas["x"] + canvas["width"] * 0.4, canvas["y"] + canvas["height"] * 0.82)
        page.mouse.down()
        page.mouse.move(canvas["x"] + canvas["width"] * 0.6, canvas["y"] + canvas["height"] * 0.82, steps=10)
        page.mouse.up()
        page.screenshot(path=shots / "demo-mask-editor.png")
        page.locator("#save-mask").click()
        page.wait_for_selector("#mask-panel", state="hidden", timeout=30_000)
        page.wait_for_function(f"(document.querySelector('#upload-face img')?.src || {before!r}) !== {before!r}", timeout=30_000)
        assert not page.locator("#whole-face input").is_checked()  # the slot keeps a part mask, now with the stroke


def test_pose_maker_draws_the_chosen_pose(running_app, tmp_path) -> None:  # noqa: F811
    """Choose a preset and move a slider: the pose slot shows a new DensePose map each time."""
    shots = screenshot_folder(tmp_path)
    with open_page(running_app[0]) as page:
        page.locator("#pose-maker").get_by_text("Or make a pose").click()
        preset = page.locator("#pose-preset input")
        preset.wait_for(state="visible")
        pose_source = "document.querySelector('#pose img') ? document.querySelector('#pose img').src : ''"
        preset.click()
        page.get_by_role("option", name="waving").click()
        page.wait_for_function(f"({pose_source}).length > 0", timeout=20_000)
        # the preset's answer also sets the sliders: wait until the view slider shows its value
        yaw = dict(zip((control.name for control in CONTROLS), control_values("waving"), strict=True))["yaw"]
        page.wait_for_function(f"Number(document.querySelector('#pose-yaw input[type=number]')?.value) === {yaw}", timeout=20_000)
        first = page.evaluate(pose_source)
        set_slider(page, "pose-yaw", 120)
        page.wait_for_function(f"({pose_source}) !== {first!r}", timeout=20_000)
        page.locator("#pose-maker").scroll_into_view_if_needed()
        page.screenshot(path=shots / "6-pose-maker.png", full_page=True)
