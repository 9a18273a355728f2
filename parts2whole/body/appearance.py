"""Colours, fabric patterns and light: what a dressed body looks like, apart from its shape.

Patterns are functions of a surface point's `rest` coordinates (body space with the body standing
at rest, metres; see `render.SurfaceMaps`), so a stripe stays on its garment as the body turns and
bends. Every choice is drawn from a `numpy.random.Generator`, so a seed fixes the look exactly.
"""

from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Colour:
    """A colour with the word a caption uses for it; `rgb` in [0, 1]."""

    name: str
    rgb: RGB


def _palette(**named: str) -> tuple[Colour, ...]:
    def rgb(hex_code: str) -> RGB:
        return tuple(int(hex_code[i : i + 2], 16) / 255 for i in (0, 2, 4))

    return tuple(Colour(name.replace("_", " "), rgb(hex_code)) for name, hex_code in named.items())


GARMENT_COLOURS = _palette(
    black="1e1e22", white="f2f2ee", grey="8a8c90", charcoal="45474c", navy="1f2a4d", blue="2f5fb3",
    light_blue="8fb8e0", red="c0282d", burgundy="6e1a2b", pink="e48fb0", orange="e8782a", yellow="efcd3a",
    mustard="c99a2e", green="2f8a4a", olive="6b6f35", teal="1f7f80", purple="6a3d9a", lavender="b7a6d9",
    brown="6b4428", beige="d8c3a0", cream="efe6d0", denim="4a6a95",
)  # fmt: skip
"""Named garment colours (captions say the name)."""

HAIR_COLOURS = _palette(
    black="151312", dark_brown="3b2618", brown="6a4528", auburn="7e3a1e", blonde="d2b06e", platinum="e6dcc4",
    grey="9a9894", red="a4421f", blue="3c5fb0", pink="d87aa8",
)  # fmt: skip
"""Hair colours, natural ones first; the dyed ones at the end are drawn less often."""

HAIR_WEIGHTS = np.array([5, 5, 5, 2, 3, 1, 2, 1.5, 0.5, 0.5])

SKIN_TONES = np.array(
    [[0.97, 0.86, 0.78], [0.93, 0.76, 0.64], [0.85, 0.64, 0.49], [0.72, 0.50, 0.35],
     [0.55, 0.36, 0.24], [0.36, 0.23, 0.15], [0.24, 0.15, 0.10]]
)  # fmt: skip
"""Skin from light to dark; a person's tone is a random point on this ramp."""

IRIS_COLOURS = np.array([[0.25, 0.15, 0.08], [0.40, 0.26, 0.12], [0.30, 0.45, 0.60], [0.35, 0.45, 0.30], [0.1, 0.08, 0.06]])


def pick(rng: np.random.Generator, options, weights=None):
    """One of `options`, optionally weighted (weights need not sum to one)."""
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def skin_tone(rng: np.random.Generator) -> RGB:
    """A point on the light-to-dark ramp, slightly varied in hue."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (position - low)
    return tuple(np.clip(tone * rng.uniform(0.96, 1.04, 3), 0, 1))


def jittered(rng: np.random.Generator, colour: Colour, amount: float = 0.05) -> Colour:
    """The same named colour, shifted a little so that no two garments match exactly."""
    return Colour(colour.name, tuple(np.clip(np.add(colour.rgb, rng.normal(0, amount, 3)), 0, 1)))


# --- fabrics -------------------------------------------------------------------------------------

PATTERNS = ("solid", "stripes", "checks", "dots", "print", "two-tone")
PRINT_SHAPES = ("star", "circle", "heart", "diamond")


@dataclass(frozen=True)
class Fabric:
    """A garment's colours and pattern: `base` everywhere, `accent` in the pattern.

    `scale` is the pattern's period in metres; `vertical` turns stripes upright; `shape` is the
    printed motif (pattern "print"); `split` is the height (metres, body at rest) above which a
    two-tone garment takes the accent colour.
    """

    pattern: str
    base: Colour
    accent: Colour
    scale: float = 0.06
    vertical: bool = False
    shape: str = "star"
    split: float = 1.2

    @classmethod
    def sample(
        cls, rng: np.random.Generator, patterns: tuple[str, ...] = PATTERNS, split: tuple[float, float] = (1.0, 1.3)
    ) -> "Fabric":
        """A random fabric; plain colour about half the time, the other patterns evenly."""
        weights = [4.0 if p == "solid" else 1.0 for p in patterns]
        base = pick(rng, GARMENT_COLOURS)
        accent = pick(rng, [c for c in GARMENT_COLOURS if c.name != base.name])
        return cls(
            pattern=pick(rng, patterns, weights),
            base=jittered(rng, base),
            accent=jittered(rng, accent),
            scale=float(rng.uniform(0.03, 0.09)),
            vertical=bool(rng.random() < 0.3),
            shape=pick(rng, PRINT_SHAPES),
            split=float(rng.uniform(*split)),
        )

    def describe(self, garment: str, article: bool = True) -> str:
        """`garment` with its colours and pattern in words, e.g. "a navy and white striped top"
        (without `article` for plural nouns: "navy trousers")."""
        base, accent = self.base.name, self.accent.name
        words = {
            "solid": f"{base} {garment}",
            "stripes": f"{base} and {accent} {'vertically ' if self.vertical else ''}striped {garment}",
            "checks": f"{base} and {accent} checked {garment}",
            "dots": f"{base} {garment} with {accent} dots",
            "print": f"{base} {garment} with a {accent} {self.shape} print",
            "two-tone": f"two-tone {accent} and {base} {garment}",
        }[self.pattern]
        if not article:
            return words
        return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"

    def accent_mask(self, rest: np.ndarray, chest: np.ndarray | None = None) -> np.ndarray:
        """Where the accent colour goes, for points (N, 3) in rest coordinates.

        `chest` is each point's position on the chest print's plane (N, 2), NaN off the print's
        area; only "print" uses it, and without it nothing is printed.
        """
        x, y, z = rest[:, 0], rest[:, 1], rest[:, 2]
        across = x + z  # runs around the body: x on the front and back, z on the sides
        if self.pattern == "stripes":
            return _band(across if self.vertical else y, self.scale, 0.5)
        if self.pattern == "checks":
            return _band(across, self.scale, 0.5) ^ _band(y, self.scale, 0.5)
        if self.pattern == "dots":
            row = np.floor(y / self.scale)
            shifted = across / self.scale + 0.5 * (row % 2)
            dx, dy = shifted - np.round(shifted), y / self.scale - row - 0.5
            return dx**2 + dy**2 < 0.28**2
        if self.pattern == "two-tone":
            return y > self.split
        if self.pattern == "print" and chest is not None:
            return motif(self.shape, chest)
        return np.zeros(len(rest), bool)

    def colours(self, rest: np.ndarray, chest: np.ndarray | None = None) -> np.ndarray:
        """Albedo (N, 3) of the fabric at points (N, 3) in rest coordinates."""
        accent = self.accent_mask(rest, chest)[:, None]
        return np.where(accent, self.accent.rgb, self.base.rgb)


def _band(coordinate: np.ndarray, period: float, duty: float) -> np.ndarray:
    return (coordinate / period) % 1.0 < duty


def motif(shape: str, point: np.ndarray) -> np.ndarray:
    """Inside a motif of radius 1 centred on the origin, for points (N, 2) (x right, y up); NaN is outside."""
    x, y = point[:, 0], point[:, 1]
    radius, angle = np.hypot(x, y), np.arctan2(y, x)
    with np.errstate(invalid="ignore"):
        if shape == "circle":
            return radius < 1.0
        if shape == "diamond":
            return np.abs(x) + np.abs(y) < 1.0
        if shape == "heart":
            x, y = 1.2 * x, 1.2 * y + 0.25
            return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0
        # a five-pointed star: the radius swings between 0.45 and 1 with the angle
        spoke = np.abs(((angle - np.pi / 2) / (2 * np.pi / 5) + 0.5) % 1.0 - 0.5) * 2
        return radius < 1.0 - 0.55 * spoke


# --- light and backdrop --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One photo's light (direction in camera space, +z towards the viewer) and backdrop colours."""

    light: RGB = (-0.35, 0.45, 0.82)
    ambient: float = 0.5
    rim: float = 0.15
    tint: RGB = (1.0, 1.0, 1.0)
    top: RGB = (0.93, 0.93, 0.92)
    bottom: RGB = (0.80, 0.80, 0.79)
    vignette: float = 0.12

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Scene":
        """Light from the front, above and to one side; a light backdrop, plain or gently graded."""
        light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(0.1, 0.7), 1.0])
        top = rng.uniform(0.72, 0.97) + rng.normal(0, 0.04, 3)
        bottom = top * rng.uniform(0.8, 1.0) + rng.normal(0, 0.02, 3)
        return cls(
            light=tuple(light / np.linalg.norm(light)),
            ambient=float(rng.uniform(0.4, 0.6)),
            rim=float(rng.uniform(0.0, 0.25)),
            tint=tuple(1.0 + rng.normal(0, 0.03, 3)),
            top=tuple(np.clip(top, 0, 1)),
            bottom=tuple(np.clip(bottom, 0, 1)),
            vignette=float(rng.uniform(0.0, 0.25)),
        )

    def backdrop(self, width: int, height: int) -> np.ndarray:
        """(H, W, 3) background: a vertical gradient darkened towards the corners."""
        t = (np.arange(height)[:, None, None] + 0.5) / height
        gradient = (1 - t) * np.asarray(self.top) + t * np.asarray(self.bottom)
        dx, dy = (np.arange(width) + 0.5) / width - 0.5, t[..., 0] - 0.5
        distance_squared = (dx**2 + dy**2) / 0.5
        return gradient * (1.0 - self.vignette * distance_squared[..., None])

    def shade(self, albedo: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Lit colour of surface points: ambient + diffuse from the light, and a soft rim at the outline."""
        diffuse = np.clip(normal @ np.asarray(self.light), 0.0, 1.0)
        rim = self.rim * (1.0 - np.clip(normal[:, 2], 0.0, 1.0)) ** 3
        light = self.ambient + (1.0 - self.ambient) * diffuse
        return albedo * (light[:, None] * np.asarray(self.tint)) + rim[:, None]
