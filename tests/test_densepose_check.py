"""The DensePose check's thresholds, with images just on either side of each (docs/method.md §1)."""

import numpy as np
import pytest
from PIL import Image

from parts2whole.densepose import BLACK_LEVEL, INDEX_SLACK, NUM_PARTS, densepose_problems

PIXELS = 100 * 100


def made_map(background: int, out_of_range: int = 0, body_index: int = 5, background_level: int = 0) -> Image.Image:
    """A 100x100 map: `background` pixels at `background_level` grey, then body pixels (V, U, part
    index), the last `out_of_range` of them with part index NUM_PARTS + INDEX_SLACK + 1."""
    pixels = np.zeros((PIXELS, 3), np.uint8)
    pixels[:background] = background_level
    pixels[background:] = (128, 128, body_index)
    if out_of_range:
        pixels[PIXELS - out_of_range :, 2] = NUM_PARTS + INDEX_SLACK + 1
    return Image.fromarray(pixels.reshape(100, 100, 3))


@pytest.mark.parametrize(("background", "flagged"), [(2000, False), (1999, True)])
def test_at_least_a_fifth_must_be_black_background(background, flagged) -> None:
    problems = densepose_problems(made_map(background))
    assert any("black background" in problem for problem in problems) == flagged


@pytest.mark.parametrize(("level", "flagged"), [(BLACK_LEVEL, False), (BLACK_LEVEL + 1, True)])
def test_background_may_be_a_little_above_black(level, flagged) -> None:
    problems = densepose_problems(made_map(5000, background_level=level))
    assert any("black background" in problem for problem in problems) == flagged


@pytest.mark.parametrize(("body", "flagged"), [(100, False), (99, True)])
def test_at_least_one_percent_must_be_body(body, flagged) -> None:
    problems = densepose_problems(made_map(PIXELS - body))
    assert any("shows no body" in problem for problem in problems) == flagged


@pytest.mark.parametrize(("out_of_range", "flagged"), [(1600, False), (1601, True)])
def test_at_most_a_fifth_of_the_body_may_have_an_index_above_24(out_of_range, flagged) -> None:
    problems = densepose_problems(made_map(2000, out_of_range=out_of_range))  # 8000 body pixels: 1600 is a fifth
    assert any("part index" in problem for problem in problems) == flagged


@pytest.mark.parametrize(("index", "flagged"), [(NUM_PARTS + INDEX_SLACK, False), (NUM_PARTS + INDEX_SLACK + 1, True)])
def test_jpeg_slack_on_the_part_index(index, flagged) -> None:
    problems = densepose_problems(made_map(5000, body_index=index))
    assert any("part index" in problem for problem in problems) == flagged


def test_each_problem_is_said_in_full() -> None:
    assert densepose_problems(made_map(PIXELS)) == ["it shows no body: it is (almost) all black"]
    assert densepose_problems(made_map(1000)) == [
        "only 10% of it is black background; a DensePose map is black wherever there is no body"
    ]
    assert densepose_problems(made_map(5000, out_of_range=2500)) == [
        "50% of its body pixels have a blue (part index) value above 24; DensePose part indices run from 1 to 24"
    ]


def test_a_greyscale_image_is_read_as_rgb() -> None:
    """A white figure on black in mode "L": its blue channel is 255, far above any part index."""
    grey = np.zeros((100, 100), np.uint8)
    grey[20:80, 30:70] = 255
    assert densepose_problems(Image.fromarray(grey)) == [
        "100% of its body pixels have a blue (part index) value above 24; DensePose part indices run from 1 to 24"
    ]
