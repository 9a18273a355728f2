"""The demo in Debian's chromium, driven by Playwright: open, click an example, generate, screenshot.

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
from app_server import running_app  # noqa: F401  (fixture)
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def set_slider(page, elem_id: str, value: int) -> None:
    """Type into a slider's number box until the page keeps the value."""
    field = page.locator(f"#{elem_id} input[type=number]")
    field.wait_for(state="visible")
    for _ in range(5):
        field.fill(str(value))
        field.press("Tab")
        page.wait_for_timeout(300)
        if field.input_value() == str(value):
            return
    pytest.fail(f"the {elem_id} slider did not take {value}")


def screenshot_folder(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("P2W_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@contextmanager
def open_page(url: str) -> Iterator[Page]:
    """The demo's page in chromium, once it shows the Generate button."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#generate", timeout=60_000)
        yield page
        browser.close()


def test_click_an_example_generate_and_screenshot(running_app, tmp_path) -> None:  # noqa: F811
    shots = screenshot_folder(tmp_path)
    with open_page(running_app[0]) as page:
        page.screenshot(path=shots / "1-empty.png", full_page=True)

        filled = "document.querySelector('#prompt textarea').value.startsWith('a person with')"
        for attempt in range(3):  # a click before the page has wired its events is lost: click again
            page.locator("#examples button.thumbnail-item").nth(2).click()  # "top_and_trousers"
            try:
                page.wait_for_function(filled, timeout=20_000)
                break
            except PlaywrightTimeout:
                page.screenshot(path=shots / f"2-example-attempt-{attempt}.png", full_page=True)
        else:
            pytest.fail("clicking the example never filled the prompt")
        page.wait_for_selector("#mask-face canvas", timeout=30_000)
        page.screenshot(path=shots / "2-example.png", full_page=True)

        page.locator("#settings").click()
        set_slider(page, "steps", 2)
        set_slider(page, "height", 256)
        set_slider(page, "width", 256)
        page.locator("#generate").click()
        try:
            page.wait_for_selector("#results img", timeout=120_000)
            page.wait_for_function(
                "document.querySelector('#result-settings').innerText.includes('\"steps\": 2')", timeout=60_000
            )
        finally:
            page.screenshot(path=shots / "3-result.png", full_page=True)
    assert all((shots / name).stat().st_size > 10_000 for name in ("1-empty.png", "2-example.png", "3-result.png"))


def test_pose_maker_draws_the_chosen_pose(running_app, tmp_path) -> None:  # noqa: F811
    """Choose a preset and move a slider: the pose slot shows a new DensePose map each time."""
    shots = screenshot_folder(tmp_path)
    with open_page(running_app[0]) as page:
        page.locator("#pose-maker").get_by_text("Or make a pose").click()
        preset = page.locator("#pose-preset input")
        preset.wait_for(state="visible")
        pose_source = "document.querySelector('#pose img') ? document.querySelector('#pose img').src : ''"
        for _ in range(3):  # a choice made before the page has wired its events is lost
            preset.click()
            page.get_by_role("option", name="waving").click()
            try:
                page.wait_for_function(f"({pose_source}).length > 0", timeout=20_000)
                break
            except PlaywrightTimeout:
                continue
        else:
            pytest.fail("choosing a preset never drew a pose")
        first = page.evaluate(pose_source)
        set_slider(page, "pose-yaw", 120)
        page.wait_for_function(f"({pose_source}) !== {first!r}", timeout=20_000)
        page.locator("#pose-maker").scroll_into_view_if_needed()
        page.screenshot(path=shots / "6-pose-maker.png", full_page=True)
