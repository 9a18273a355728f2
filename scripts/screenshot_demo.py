"""Screenshot `python app.py` generating from an example, as a new user would see it.

    python scripts/screenshot_demo.py --url http://127.0.0.1:7860/ --out docs/screenshots/mini-model.png [--example 0]

Start the app first (on a fresh clone: `python app.py`, which falls back to the shipped mini model).
The script clicks an example, presses Generate with the example's own settings, waits for the
result and saves a full-page screenshot; it prints the seconds the generation took.
"""

import argparse
import shutil
import time

from playwright.sync_api import sync_playwright

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--out", required=True)
    parser.add_argument("--example", type=int, default=0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.url)
        page.wait_for_selector("#page-ready .ready", state="attached", timeout=120_000)
        page.locator("#examples button.thumbnail-item").nth(args.example).click()
        page.wait_for_function("document.querySelector('#prompt textarea').value.length > 0", timeout=60_000)
        page.wait_for_selector("#pose img", timeout=60_000)
        started = time.perf_counter()
        page.locator("#generate").click()
        page.wait_for_selector("#results img", timeout=300_000)
        page.locator("#run-files").click()
        page.wait_for_function("(document.querySelector('#result-settings')?.innerText || '').includes('seed')", timeout=60_000)
        print(f"generation shown after {time.perf_counter() - started:.1f} s")
        page.wait_for_timeout(1000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
