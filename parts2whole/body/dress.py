"""Dressing the body: a person's look (skin, face, hair or headwear, garments, shoes) and its photo.

A `Person` is drawn from a seeded generator, so one seed gives one person, byte for byte. Garments
are painted onto the body's surface: a top covers the torso and the arms up to its sleeve's reach,
trousers the legs up to their hem, shoes the feet. What sticks out of the body (hair volume, a
skirt, a hat) is an accessory solid (`solids.ACCESSORY_TAG` and up), drawn in the photo and the
parsing map but never in the DensePose map, which stays body-only (`render_person`).

Every rendered pixel gets a `Layer` (what covers it) first; both the parsing map and the colours
follow from the layers, so the parsing map labels exactly what the photo shows.

Parsing conventions: the face is all visible skin of the head's skull solid (forehead, cheeks and
jaw; not the neck), hair is the hair solids plus the scalp painted in hair colour, and headwear
shares the hair's label. A buzz cut counts as hair (the "hair or headwear" part is present); only
a bald head without headwear has no such part.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np
from PIL import Image

from ..labels import PART_LABELS
from .appearance import (
    GARMENT_COLOURS,
    HAIR_COLOURS,
    HAIR_WEIGHTS,
    IRIS_COLOURS,
    RGB,
    Colour,
    Fabric,
    Scene,
    jittered,
    pick,
    skin_tone,
)
from .render import Camera, Figure, SurfaceMaps, iuv_image
from .skeleton import Build, Pose, bone_frames
from .solids import ACCESSORY_TAG, Ellipsoid, Shape, Solid, Tube, body_solids

HAIR_TAG, HEADWEAR_TAG, SKIRT_TAG = ACCESSORY_TAG, ACCESSORY_TAG + 1, ACCESSORY_TAG + 2

TORSO = (1, 2)
FEET = (5, 6)
THIGHS, SHINS = (7, 8, 9, 10), (11, 12, 13, 14)
UPPER_ARMS, FOREARMS = (15, 16, 17, 18), (19, 20, 21, 22)


# --- what a person wears -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hair:
    """`length`: "buzz" (painted on the scalp), "short", "medium" (to the jaw) or "long" (down the back)."""

    length: str
    colour: Colour


@dataclass(frozen=True)
class Headwear:
    """`kind`: "cap" (with a brim in front), "beanie" or "hat" (a crown and a brim all round)."""

    kind: str
    fabric: Fabric


@dataclass(frozen=True)
class Top:
    """Covers the torso from `hem` (fraction of the torso's length above the hips) to the neck, and
    the arms to `sleeve`: 0 sleeveless, 1 the elbow, 2 the wrist."""

    sleeve: float
    neckline: str  # "crew" or "v"
    hem: float
    fabric: Fabric


@dataclass(frozen=True)
class Bottom:
    """`kind` "trousers", "shorts" or "skirt"; its hem at `reach` down the leg (0 the hip, 1 the knee,
    2 the ankle); it covers the torso below `waist` (fraction of the torso's length). A skirt
    widens by `flare` metres of radius per metre down."""

    kind: str
    reach: float
    waist: float
    fabric: Fabric
    flare: float = 0.3


@dataclass(frozen=True)
class Shoes:
    """`kind`: "sneakers", "boots" (up the shin), "flats" (open instep) or "sandals" (straps)."""

    kind: str
    colour: Colour
    sole: Colour


@dataclass(frozen=True)
class Outfit:
    """A top and a bottom; with `one_piece` ("dress" or "jumpsuit") they are one whole-body garment
    of one fabric (a dress's bottom is a skirt, a jumpsuit's trousers)."""

    top: Top
    bottom: Bottom
    one_piece: str | None
    shoes: Shoes | None


@dataclass(frozen=True)
class Person:
    """Everything that stays the same from one photo of a person to the next."""

    build: Build
    skin: RGB
    iris: RGB
    lips: RGB
    hair: Hair | None
    headwear: Headwear | None
    outfit: Outfit

    @property
    def labels(self) -> tuple[str, ...]:
        """The parts this person has, in `PART_LABELS` order (each may still be hidden in a view)."""
        has = {
            "hair or headwear": self.hair is not None or self.headwear is not None,
            "face": True,
            "upper body clothes": self.outfit.one_piece is None,
            "lower body clothes": self.outfit.one_piece is None,
            "whole body clothes": self.outfit.one_piece is not None,
            "shoes": self.outfit.shoes is not None,
        }
        return tuple(label for label in PART_LABELS if has[label])


def sample_person(rng: np.random.Generator) -> Person:
    """A random person: build, skin, hair or headwear (or neither), an outfit and maybe shoes."""
    build = _sample_build(rng)
    skin = skin_tone(rng)
    hair = None
    if rng.random() < 0.95:
        length = pick(rng, ("buzz", "short", "medium", "long"), (1, 3.5, 2.5, 3))
        hair = Hair(length, jittered(rng, pick(rng, HAIR_COLOURS, HAIR_WEIGHTS), 0.03))
    headwear = None
    if rng.random() < 0.2:
        kind = pick(rng, ("cap", "beanie", "hat"))
        headwear = Headwear(kind, Fabric.sample(rng, ("solid", "stripes") if kind == "beanie" else ("solid",)))
    lips = tuple(np.clip(np.multiply(skin, (0.85, 0.62, 0.62)) + (0.08, 0.0, 0.02), 0, 1))
    return Person(build, skin, tuple(pick(rng, IRIS_COLOURS)), lips, hair, headwear, _sample_outfit(rng, build))


def _sample_build(rng: np.random.Generator) -> Build:
    """Proportions around the average body: each factor triangular over its range, peaking at its default."""
    values = {}
    for f in fields(Build):
        low, high = f.metadata["range"]
        values[f.name] = float(rng.triangular(low, f.default, high))
    return Build(**values)


SLEEVE_REACH = {"sleeveless": (0.0, 0.0), "short": (0.3, 0.6), "elbow": (1.0, 1.4), "long": (1.85, 1.95)}
SLEEVE_WEIGHTS = (2, 4, 1, 4)
HEM_REACH = {"trousers": (1.85, 1.97), "shorts": (0.3, 0.75), "skirt": (0.35, 1.5)}
BOTTOM_WEIGHTS = (11, 4, 5)


def _sample_outfit(rng: np.random.Generator, build: Build) -> Outfit:
    one_piece = pick(rng, ("dress", "jumpsuit"), (3, 2)) if rng.random() < 0.2 else None
    sleeve = float(rng.uniform(*SLEEVE_REACH[pick(rng, tuple(SLEEVE_REACH), SLEEVE_WEIGHTS)]))
    neckline = pick(rng, ("crew", "v"), (7, 3))
    fabric = Fabric.sample(rng, split=(1.05 * build.unit, 1.35 * build.unit))
    if one_piece is None:
        kind = pick(rng, tuple(HEM_REACH), BOTTOM_WEIGHTS)
        patterns = ("solid", "stripes", "checks", "dots", "two-tone")  # no chest to print on
        bottom_fabric = Fabric.sample(rng, patterns, split=(0.3 * build.unit, 0.6 * build.unit))
        top = Top(sleeve, neckline, float(rng.uniform(0.02, 0.3)), fabric)
    else:  # one fabric from the neck down: the top reaches the hips, the bottom is a skirt or trousers
        kind = "skirt" if one_piece == "dress" else "trousers"
        bottom_fabric = fabric
        top = Top(sleeve, neckline, 0.0, fabric)
    reach, waist, flare = rng.uniform(*HEM_REACH[kind]), rng.uniform(0.12, 0.3), rng.uniform(0.15, 0.45)
    bottom = Bottom(kind, float(reach), float(waist), bottom_fabric, float(flare))
    shoes = None
    if rng.random() < 0.9:
        sole = pick(rng, [c for c in GARMENT_COLOURS if c.name in ("white", "black", "brown", "cream")])
        kind = pick(rng, ("sneakers", "boots", "flats", "sandals"), (4, 2, 2, 2))
        shoes = Shoes(kind, jittered(rng, pick(rng, GARMENT_COLOURS)), sole)
    return Outfit(top, bottom, one_piece, shoes)


# --- words ---------------------------------------------------------------------------------------


def describe(person: Person) -> str:
    """A caption: hair or headwear, then the garments with colours and patterns, then the shoes."""
    head = []
    if person.hair is not None:
        length = "buzz-cut" if person.hair.length == "buzz" else person.hair.length
        head.append(f"{length} {person.hair.colour.name} hair")
    if person.headwear is not None:
        head.append(person.headwear.fabric.describe(person.headwear.kind))
    outfit = person.outfit
    sleeves = _sleeves(outfit.top.sleeve)
    if outfit.one_piece is not None:
        garments = [outfit.top.fabric.describe(f"{sleeves} {outfit.one_piece}")]
    else:
        bottom = outfit.bottom.fabric.describe(_bottom_noun(outfit.bottom), article=outfit.bottom.kind == "skirt")
        garments = [outfit.top.fabric.describe(f"{sleeves} top"), bottom]
    shoes = outfit.shoes
    garments.append(f"{shoes.colour.name} {shoes.kind}" if shoes is not None else "no shoes")
    who = "a bald person" if person.hair is None and person.headwear is None else "a person with " + " and ".join(head)
    return f"{who}, wearing {', '.join(garments[:-1])} and {garments[-1]}"


def _sleeves(reach: float) -> str:
    if reach <= 0.0:
        return "sleeveless"
    return "short-sleeved" if reach < 1.0 else "elbow-sleeved" if reach < 1.6 else "long-sleeved"


def _bottom_noun(bottom: Bottom) -> str:
    if bottom.kind != "skirt":
        return bottom.kind
    return "mini skirt" if bottom.reach < 0.75 else "knee-length skirt" if bottom.reach < 1.2 else "midi skirt"


# --- accessory solids ----------------------------------------------------------------------------


def head_shape(build: Build) -> Ellipsoid:
    """The skull: the head bone's ellipsoid among the body solids."""
    return next(s.shape for s in body_solids(build) if is_skull(s))


def on_head(build: Build, centre: tuple[float, float, float], radii: tuple[float, float, float]) -> Ellipsoid:
    """An ellipsoid given in skull units (the skull is the unit sphere), in the head bone's frame."""
    skull = head_shape(build)
    return Ellipsoid(tuple(np.add(skull.centre, np.multiply(centre, skull.radii))), tuple(np.multiply(radii, skull.radii)))


HAIR_VOLUMES = {
    "short": ((0.0, 0.22, -0.1), (1.05, 0.85, 1.03)),
    "medium": ((0.0, 0.06, -0.12), (1.1, 1.04, 1.05)),
    "long": ((0.0, 0.06, -0.12), (1.1, 1.04, 1.05)),
}
"""Hair volume ellipsoids in skull units; shifted back so that the face stays in front of them."""


def accessories(person: Person) -> list[Solid]:
    """The solids a person wears beyond the body: hair volume, headwear, a skirt."""
    build = person.build
    solids = []
    if person.hair is not None and person.hair.length in HAIR_VOLUMES:
        solids.append(Solid("head", on_head(build, *HAIR_VOLUMES[person.hair.length]), HAIR_TAG))
        if person.hair.length == "long":
            solids.append(Solid("head", _long_hair(build), HAIR_TAG))
    if person.headwear is not None:
        solids += [Solid("head", shape, HEADWEAR_TAG) for shape in _headwear(build, person.headwear.kind)]
    if person.outfit.bottom.kind == "skirt":
        solids.append(Solid("pelvis", _skirt(build, person.outfit.bottom), SKIRT_TAG))
    return solids


def _long_hair(build: Build) -> Tube:
    """A flat tube hanging from the back of the skull to the shoulder blades."""
    skull = head_shape(build)
    rx, rz = skull.radii[0], skull.radii[2]
    behind = (0.0, skull.centre[2] - 0.55 * rz)
    return Tube(-0.2 * build.unit, skull.centre[1], 1.3 * rx, 0.95 * rx, aspect=(1.0, 0.45), axis=behind)


def _headwear(build: Build, kind: str) -> list[Shape]:
    if kind == "cap":
        return [on_head(build, (0, 0.4, -0.02), (1.07, 0.72, 1.07)), on_head(build, (0, 0.3, 0.85), (0.8, 0.06, 0.7))]
    if kind == "beanie":
        return [on_head(build, (0, 0.35, -0.04), (1.09, 0.8, 1.09)), on_head(build, (0, 1.15, -0.04), (0.24, 0.2, 0.24))]
    skull = head_shape(build)
    (cx, cy, cz), (rx, ry, rz) = skull.centre, skull.radii
    crown = Tube(cy + 0.25 * ry, cy + 1.15 * ry, 1.14 * rx, 1.0 * rx, aspect=(1.0, rz / rx), axis=(cx, cz))
    return [crown, on_head(build, (0, 1.15, 0), (1.0, 0.08, 1.0)), on_head(build, (0, 0.27, 0), (2.0, 0.05, 1.8))]


def _skirt(build: Build, bottom: Bottom) -> Tube:
    """A tube from the waist, flaring wide enough to clear the hips and thighs, down to the hem."""
    waist_y = bottom.waist * build.torso
    rest = bone_frames(build, Pose())
    hip_y = rest["left_thigh"].origin[1] - rest["pelvis"].origin[1]  # the hip joints, in the pelvis frame
    hem_y = hip_y - leg_drop(build, bottom.reach)
    waist_r = 1.04 * torso_half_width(build, waist_y)
    thigh = next(s.shape for s in body_solids(build) if s.bone == "left_thigh" and isinstance(s.shape, Ellipsoid))
    clear_r = 1.08 * (build.hip_half_width + thigh.radii[0])
    slope = max(bottom.flare, (clear_r - waist_r) / (waist_y - hip_y))
    return Tube(hem_y, waist_y, waist_r + slope * (waist_y - hem_y), waist_r, aspect=(1.0, 0.85))


def leg_drop(build: Build, reach: float) -> float:
    """How far below the hip joint a point `reach` down the leg is (0 hip, 1 knee, 2 ankle), metres."""
    return min(reach, 1.0) * build.upper_leg + max(reach - 1.0, 0.0) * build.lower_leg


def torso_half_width(build: Build, y: float) -> float:
    """Half the torso's width at height `y` of the torso frame (the widest torso tube there)."""
    widths = [
        s.shape.r0 + (s.shape.r1 - s.shape.r0) * (y - s.shape.y0) / (s.shape.y1 - s.shape.y0)
        for s in body_solids(build)
        if s.bone == "torso" and isinstance(s.shape, Tube) and s.shape.y0 <= y <= s.shape.y1
    ]
    return max(widths)


# --- layers: what covers each pixel --------------------------------------------------------------


class Layer(IntEnum):
    """What covers a pixel: the photo's colours and the parsing map's labels both follow from it."""

    BACKGROUND = 0
    SKIN = 1
    FACE = 2
    HAIR = 3
    HEADWEAR = 4
    TOP = 5
    BOTTOM = 6
    SHOES = 7


def parsing_map(layers: np.ndarray, person: Person) -> np.ndarray:
    """Parsing labels (H, W) uint8: 0 background, 1..6 the parts in `PART_LABELS` order, 7 the rest."""
    garment = PART_LABELS.index("whole body clothes") + 1 if person.outfit.one_piece else None
    label = {
        Layer.BACKGROUND: 0,
        Layer.SKIN: 7,
        Layer.FACE: PART_LABELS.index("face") + 1,
        Layer.HAIR: PART_LABELS.index("hair or headwear") + 1,
        Layer.HEADWEAR: PART_LABELS.index("hair or headwear") + 1,
        Layer.TOP: garment or PART_LABELS.index("upper body clothes") + 1,
        Layer.BOTTOM: garment or PART_LABELS.index("lower body clothes") + 1,
        Layer.SHOES: PART_LABELS.index("shoes") + 1,
    }
    lookup = np.array([label[layer] for layer in Layer], np.uint8)
    return lookup[layers]


def showing(maps: SurfaceMaps, solids: list[Solid], predicate: Callable[[Solid], bool]) -> np.ndarray:
    """Where the pixels (H, W) show a solid for which `predicate` holds."""
    return np.array([predicate(solid) for solid in solids] + [False])[maps.solid]  # solid -1 (background): False


def is_skull(solid: Solid) -> bool:
    return solid.bone == "head" and isinstance(solid.shape, Ellipsoid) and solid.tag < ACCESSORY_TAG


def unit_coordinates(maps: SurfaceMaps, solids: list[Solid]) -> np.ndarray:
    """Each hit in its solid's own unit frame (H, W, 3): an ellipsoid is the unit sphere, a tube
    spans y 0..1 from `y0` to `y1` with unit radius around its axis."""
    out = np.zeros_like(maps.local)
    flat_out, flat_local, flat_solid = out.reshape(-1, 3), maps.local.reshape(-1, 3), maps.solid.ravel()
    pixels = np.flatnonzero(flat_solid >= 0)
    pixels = pixels[np.argsort(flat_solid[pixels], kind="stable")]  # grouped by solid
    indices, starts = np.unique(flat_solid[pixels], return_index=True)
    for index, group in zip(indices, np.split(pixels, starts[1:]), strict=True):
        flat_out[group] = _unit(solids[index].shape, flat_local[group])
    return out


def _unit(shape: Shape, local: np.ndarray) -> np.ndarray:
    if isinstance(shape, Ellipsoid):
        return (local - shape.centre) / shape.radii
    along = (local[:, 1] - shape.y0) / (shape.y1 - shape.y0)
    radius = shape.r0 + (shape.r1 - shape.r0) * along
    across = (local[:, [0, 2]] - shape.axis) / (radius[:, None] * shape.aspect)
    return np.stack([across[:, 0], along, across[:, 1]], -1)


def scalp(unit: np.ndarray, length: str) -> np.ndarray:
    """Whether skull points (unit sphere, ..., 3) lie above the hairline, which is low at the back."""
    y, z = unit[..., 1], unit[..., 2]
    low, slope = (0.08, 0.5) if length in ("buzz", "short") else (-0.1, 0.62)
    return y > low + slope * z


def layers_of(maps: SurfaceMaps, unit: np.ndarray, solids: list[Solid], person: Person) -> np.ndarray:
    """What covers each pixel (H, W) of `Layer`s, given the hits' `unit_coordinates`; later
    garments win where two overlap."""
    build, outfit = person.build, person.outfit
    skull = showing(maps, solids, is_skull)
    tag, v = maps.tag, maps.v
    torso_t = np.where(np.isin(tag, TORSO), maps.local[..., 1] / build.torso, np.nan)
    arm = np.select([np.isin(tag, UPPER_ARMS), np.isin(tag, FOREARMS)], [v, 1.0 + v], np.nan)
    leg = np.select([np.isin(tag, THIGHS), np.isin(tag, SHINS)], [v, 1.0 + v], np.nan)

    layers = np.where(tag > 0, Layer.SKIN, Layer.BACKGROUND).astype(np.uint8)
    bottom = (torso_t < outfit.bottom.waist) | (tag == SKIRT_TAG)
    if outfit.bottom.kind != "skirt":
        bottom |= leg < outfit.bottom.reach
    layers[bottom] = Layer.BOTTOM
    top = ((torso_t >= outfit.top.hem) & ~_neck_opening(maps, torso_t, outfit.top, build)) | (arm < outfit.top.sleeve)
    layers[top] = Layer.TOP
    if outfit.shoes is not None:
        layers[_shoe(maps, unit, leg, outfit.shoes)] = Layer.SHOES
    layers[skull] = Layer.FACE
    if person.hair is not None:
        layers[(skull & scalp(unit, person.hair.length)) | (tag == HAIR_TAG)] = Layer.HAIR
    layers[tag == HEADWEAR_TAG] = Layer.HEADWEAR
    return layers


def _neck_opening(maps: SurfaceMaps, torso_t: np.ndarray, top: Top, build: Build) -> np.ndarray:
    """The torso skin a top leaves bare at the neck: a band at the base of the neck, and a V in front."""
    opening = torso_t > 0.97
    if top.neckline == "v":
        x, z = maps.local[..., 0], maps.local[..., 2]
        opening |= (z > 0) & (torso_t - 0.78 > 0.19 * np.abs(x) / (0.07 * build.unit))
    return opening


def _shoe(maps: SurfaceMaps, unit: np.ndarray, leg: np.ndarray, shoes: Shoes) -> np.ndarray:
    """The pixels a pair of shoes covers: the feet (less the open parts of flats and sandals), and
    for boots the lower shin."""
    feet = np.isin(maps.tag, FEET)
    along, up = unit[..., 1], unit[..., 2]  # foot frame: +y towards the toes, +z up
    sole = up < -0.45
    if shoes.kind == "boots":
        return feet | (leg > 1.6)
    if shoes.kind == "flats":
        return feet & (sole | (up < 0.45) | (along > 0.35))
    if shoes.kind == "sandals":
        return feet & (sole | ((along * 3.5) % 1.0 < 0.3))
    return feet


# --- colours -------------------------------------------------------------------------------------


def albedo_of(maps: SurfaceMaps, unit: np.ndarray, solids: list[Solid], layers: np.ndarray, person: Person) -> np.ndarray:
    """Unlit colour (H, W, 3) of every person pixel, from its layer."""
    out = np.zeros((*layers.shape, 3))
    out[layers == Layer.SKIN] = person.skin
    face = layers == Layer.FACE
    out[face] = _face(unit[face], person)
    hair = layers == Layer.HAIR
    if person.hair is not None:
        around = np.arctan2(unit[hair][:, 0], unit[hair][:, 2])
        out[hair] = np.multiply(person.hair.colour.rgb, (0.96 + 0.04 * np.sin(90 * around))[:, None])
    if person.headwear is not None:
        worn = layers == Layer.HEADWEAR
        out[worn] = person.headwear.fabric.colours(maps.rest[worn])
        if person.headwear.kind == "beanie":  # knitted ribs
            around = np.arctan2(unit[worn][:, 0], unit[worn][:, 2])
            out[worn] *= (0.9 + 0.1 * (np.sin(24 * around) > 0))[:, None]
        if person.headwear.kind == "hat":  # a band round the bottom of the crown
            band = worn & showing(maps, solids, lambda solid: isinstance(solid.shape, Tube))
            out[band & (unit[..., 1] < 0.22)] = person.headwear.fabric.accent.rgb
    outfit = person.outfit
    top = layers == Layer.TOP
    out[top] = outfit.top.fabric.colours(maps.rest[top], _chest(maps, person.build)[top])
    bottom = layers == Layer.BOTTOM
    out[bottom] = outfit.bottom.fabric.colours(maps.rest[bottom])
    if outfit.shoes is not None:
        shoe = layers == Layer.SHOES
        sole = shoe & (unit[..., 2] < -0.45) & np.isin(maps.tag, FEET)
        out[shoe] = outfit.shoes.colour.rgb
        out[sole] = outfit.shoes.sole.rgb
        if outfit.shoes.kind == "sneakers":  # laces across the instep
            laces = shoe & ~sole & (unit[..., 2] > 0.5) & (unit[..., 1] < 0.3) & ((unit[..., 1] * 12) % 1.0 < 0.4)
            out[laces] = outfit.shoes.sole.rgb
    return out


def _chest(maps: SurfaceMaps, build: Build) -> np.ndarray:
    """Where a print sits: torso-front points in units of the print's radius, centred on the chest."""
    radius = 0.075 * build.unit
    x, y = maps.local[..., 0], maps.local[..., 1] - 0.64 * build.torso
    front = np.isin(maps.tag, TORSO) & (maps.local[..., 2] > 0)
    return np.where(front[..., None], np.stack([x, y], -1) / radius, np.nan)


def _face(unit: np.ndarray, person: Person) -> np.ndarray:
    """Skin with eyes (white, iris, pupil, lid line), brows, a shaded nose and lips, on the front of the skull."""
    x, y, z = unit[:, 0], unit[:, 1], unit[:, 2]
    colour = np.tile(np.asarray(person.skin), (len(unit), 1))
    front = z > 0.3
    side = np.abs(x)
    brow_colour = person.hair.colour.rgb if person.hair is not None else np.multiply(person.skin, 0.45)
    eye = ((side - 0.36) / 0.15) ** 2 + ((y - 0.02) / 0.07) ** 2
    iris = ((side - 0.36) / 0.07) ** 2 + ((y - 0.02) / 0.07) ** 2
    lid = (eye >= 1.0) & (eye < 1.7) & (y > 0.02)
    brow = (np.abs(y - (0.2 - 0.4 * (side - 0.36) ** 2)) < 0.025) & (side > 0.17) & (side < 0.56)
    nose = (np.abs(x - 0.07) < 0.04) & (y < -0.02) & (y > -0.3)
    nostril = ((side - 0.06) / 0.045) ** 2 + ((y + 0.31) / 0.03) ** 2 < 1
    mouth = ((x / 0.2) ** 2 + ((y + 0.5) / 0.06) ** 2 < 1) & ~((side > 0.05) & (np.abs(y + 0.5) > 0.045))
    features = [
        (nose, np.multiply(person.skin, 0.85)),
        (nostril, np.multiply(person.skin, 0.55)),
        (mouth, person.lips),
        ((np.abs(y + 0.5) < 0.01) & (side < 0.19), np.multiply(person.lips, 0.6)),
        (brow, np.multiply(brow_colour, 0.8)),
        (lid, (0.08, 0.06, 0.05)),
        (eye < 1.0, (0.95, 0.95, 0.93)),
        (iris < 1.0, person.iris),
        (iris < 0.2, (0.03, 0.03, 0.03)),
    ]
    for where, rgb in features:
        colour[front & where] = rgb
    return colour


# --- photos --------------------------------------------------------------------------------------

SUPERSAMPLE = 2
"""The photo is rendered at this many times its size and box-filtered down: smooth outlines."""


def photograph(person: Person, figure: Figure, scene: Scene) -> tuple[Image.Image, np.ndarray]:
    """The person's photo (RGB, anti-aliased) and its parsing map (H, W uint8, unblended) in `figure`'s view."""
    width, height = figure.size
    maps, unit, solids = _dressed_surface(person, figure.crop((0, 0, width, height), (SUPERSAMPLE * width, SUPERSAMPLE * height)))
    layers = layers_of(maps, unit, solids, person)
    on_person = layers > 0
    rgb = scene.backdrop(SUPERSAMPLE * width, SUPERSAMPLE * height)
    albedo = albedo_of(maps, unit, solids, layers, person)
    rgb[on_person] = scene.shade(albedo[on_person], maps.normal[on_person])
    photo = Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).reduce(SUPERSAMPLE)
    return photo, parse(person, figure)


def parse(person: Person, figure: Figure) -> np.ndarray:
    """The parsing map (H, W uint8) of the person in `figure`'s view; see `parsing_map`."""
    return parsing_map(layers_of(*_dressed_surface(person, figure), person), person)


def _dressed_surface(person: Person, figure: Figure) -> tuple[SurfaceMaps, np.ndarray, list[Solid]]:
    """The render of the body with the person's accessories, its hits' `unit_coordinates`, and the solids."""
    extras = accessories(person)
    maps = figure.surface(extras)
    solids = [*figure.body, *extras]
    return maps, unit_coordinates(maps, solids), solids


def render_person(
    person: Person, pose: Pose, camera: Camera, size: tuple[int, int], scene: Scene | None = None
) -> tuple[Image.Image, Image.Image, np.ndarray]:
    """The person in `pose` seen by `camera`: (photo, DensePose IUV map, parsing map), all of `size`
    = (width, height), in `scene`'s light (default: `Scene()`). The IUV map is rendered from the
    body alone: accessories never show in it."""
    figure = Figure(person.build, pose, camera, size)
    photo, parsing = photograph(person, figure, scene or Scene())
    return photo, iuv_image(figure.surface()), parsing
