"""Evaluation metrics for generated people: a region's colour in CIELAB, colour difference, overlap.

numpy only. Colours follow sRGB (IEC 61966-2-1) with the D65 white point. How to find a person or a
part in a generated image (which this module does not know) is the evaluation script's choice.
"""

import numpy as np

SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
"""Linear sRGB to CIE XYZ, D65 (IEC 61966-2-1)."""

D65_WHITE = np.array([0.95047, 1.0, 1.08883])
"""The reference white's XYZ: sRGB white (255, 255, 255) maps to L = 100, a = b = 0."""


def srgb_to_linear(rgb_uint8: np.ndarray) -> np.ndarray:
    """8-bit sRGB values to linear light in [0, 1] (the sRGB transfer curve undone)."""
    encoded = np.asarray(rgb_uint8, dtype=np.float64) / 255.0
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def linear_to_lab(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) to CIELAB (..., 3): L in [0, 100]."""
    xyz = np.asarray(linear_rgb, dtype=np.float64) @ SRGB_TO_XYZ.T / D65_WHITE
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3.0 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def mean_lab(image_rgb_uint8: np.ndarray, region: np.ndarray) -> np.ndarray:
    """CIELAB (3,) of the mean colour of `region` (bool, H x W) in an 8-bit sRGB image (H, W, 3).

    The mean is taken in linear RGB, then converted: averaging light is what the eye does when it
    sees a fine pattern from afar, whereas averaging gamma-encoded values darkens mixtures (half
    black, half white averages to L = 76 in light but 53 in encoded values), and averaging Lab values
    would depend on how a texture's colours are spread rather than on the colour it looks.
    """
    image = np.asarray(image_rgb_uint8)
    region = np.asarray(region)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"The image must be an H x W x 3 uint8 array, got {image.dtype} {image.shape}.")
    if region.dtype != bool or region.shape != image.shape[:2]:
        raise ValueError(f"The region must be a bool array of shape {image.shape[:2]}, got {region.dtype} {region.shape}.")
    if not region.any():
        raise ValueError("The region is empty: it has no mean colour.")
    return linear_to_lab(srgb_to_linear(image[region]).mean(axis=0))


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> float | np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) of CIELAB colours (..., 3); symmetric.

    CIEDE2000 rather than CIE76 (plain Lab distance) because CIE76 overstates differences between
    saturated colours several-fold, which would make clothes colour errors incomparable across
    colours; ~1 is a just-noticeable difference. Follows Sharma, Wu & Dalal (2005), whose published
    test pairs the tests check. A float for single colours, else an array of the broadcast shape.
    """
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    chroma_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(chroma_mean**7 / (chroma_mean**7 + 25.0**7)))
    a1, a2 = (1.0 + g) * a1, (1.0 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360.0, np.degrees(np.arctan2(b2, a2)) % 360.0
    achromatic = c1 * c2 == 0.0

    dh = h2 - h1
    dh = np.where(achromatic, 0.0, np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh)))
    d_l, d_c, d_h = l2 - l1, c2 - c1, 2.0 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2.0))

    # Sharma's special hue mean for an achromatic colour is left out: dH is then 0, so it is unused.
    l_mean, c_mean, h_sum = (l1 + l2) / 2.0, (c1 + c2) / 2.0, h1 + h2
    h_mean = np.where(np.abs(h1 - h2) <= 180.0, h_sum / 2.0, np.where(h_sum < 360.0, h_sum + 360.0, h_sum - 360.0) / 2.0)
    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_mean - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_mean))
        + 0.32 * np.cos(np.radians(3.0 * h_mean + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_mean - 63.0))
    )
    s_l = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / np.sqrt(20.0 + (l_mean - 50.0) ** 2)
    s_c, s_h = 1.0 + 0.045 * c_mean, 1.0 + 0.015 * c_mean * t
    d_theta = 30.0 * np.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    rotation = -np.sin(np.radians(2.0 * d_theta)) * 2.0 * np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7))
    term_l, term_c, term_h = d_l / s_l, d_c / s_c, d_h / s_h
    result = np.sqrt(term_l**2 + term_c**2 + term_h**2 + rotation * term_c * term_h)
    return float(result) if result.ndim == 0 else result


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape, e.g. the person's silhouette in a
    generated image and in its target; 1 = the same pixels, 0 = no pixel in common.

    Two empty masks raise a ValueError: their overlap is undefined, and counting it as perfect (or
    as nothing) would bias an average; skip such pairs instead (e.g. a part absent in both).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != bool or b.dtype != bool or a.shape != b.shape:
        raise ValueError(f"Expected two bool masks of one shape, got {a.dtype} {a.shape} and {b.dtype} {b.shape}.")
    union = np.logical_or(a, b).sum()
    if union == 0:
        raise ValueError("Both masks are empty: their intersection over union is undefined.")
    return float(np.logical_and(a, b).sum() / union)
