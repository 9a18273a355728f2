import numpy as np
import pytest

from parts2whole.metrics import delta_e, iou, mean_lab

# Sharma, Wu & Dalal (2005), "The CIEDE2000 Color-Difference Formula: Implementation Notes,
# Supplementary Test Data, and Mathematical Observations", Table 1: pairs chosen to catch the
# mistakes a plausible implementation makes (chroma correction, hue wrap-around, achromatic colours,
# the rotation term, dark colours).
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def solid(rgb: tuple[int, int, int], size: int = 4) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def everywhere(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape[:2], dtype=bool)


# Published to two decimals (e.g. GNU Octave's rgb2lab tests).
@pytest.mark.parametrize(
    "rgb, lab",
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 255, 0), (87.74, -86.18, 83.18)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
    ],
)
def test_lab_of_pure_colours(rgb, lab):
    image = solid(rgb)
    assert mean_lab(image, everywhere(image)) == pytest.approx(lab, abs=0.01)


def test_the_mean_is_taken_in_linear_light():
    # Half black, half white: mean linear light 0.5, L = 116 * 0.5^(1/3) - 16 = 76.07 (an sRGB mean
    # of 127.5 would give L = 53.4).
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0] = 255
    assert mean_lab(image, everywhere(image)) == pytest.approx((116.0 * 0.5 ** (1 / 3) - 16.0, 0.0, 0.0), abs=1e-3)


def test_only_the_region_counts():
    image = solid((0, 0, 255))
    image[1:3, 1:3] = (255, 0, 0)
    region = np.zeros((4, 4), dtype=bool)
    region[1:3, 1:3] = True
    assert mean_lab(image, region) == pytest.approx(mean_lab(solid((255, 0, 0)), everywhere(image)))


def test_bad_regions_are_refused():
    image = solid((10, 20, 30))
    with pytest.raises(ValueError, match="empty"):
        mean_lab(image, np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="bool array of shape"):
        mean_lab(image, np.ones((4, 5), dtype=bool))


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA_PAIRS)
def test_ciede2000_matches_published_pairs(lab1, lab2, expected):
    assert delta_e(lab1, lab2) == pytest.approx(expected, abs=1e-4)
    assert delta_e(lab2, lab1) == pytest.approx(expected, abs=1e-4)


def test_delta_e_is_zero_on_equal_colours_and_works_on_arrays():
    first = np.array([pair[0] for pair in SHARMA_PAIRS])
    second = np.array([pair[1] for pair in SHARMA_PAIRS])
    assert delta_e(first, first) == pytest.approx(np.zeros(len(first)), abs=1e-12)
    assert delta_e(first, second) == pytest.approx([pair[2] for pair in SHARMA_PAIRS], abs=1e-4)


def test_iou_of_known_masks():
    a = np.zeros((2, 6), dtype=bool)
    b = np.zeros((2, 6), dtype=bool)
    a[:, 0:4] = True
    b[:, 2:6] = True
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, a) == 1.0
    assert iou(a[:, :2], b[:, :2]) == 0.0


def test_iou_refuses_what_it_cannot_measure():
    empty = np.zeros((3, 3), dtype=bool)
    with pytest.raises(ValueError, match="undefined"):
        iou(empty, empty)
    with pytest.raises(ValueError, match="one shape"):
        iou(empty, np.ones((3, 4), dtype=bool))
