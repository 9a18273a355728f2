"""The body's surface: solids fixed to bones, each with DensePose part indices and U/V rules.

A solid is an ellipsoid or an elliptic tapered tube (a cone frustum with an elliptic section)
in its bone's local frame (see `skeleton.py`). Both are quadrics, so the renderer intersects
camera rays with them exactly. Each body solid carries the DensePose part index (1..24) of the
surface it belongs to, split as DensePose splits the body: torso, legs and arms into a front and
a back part by the sign of local z, the head into right and left halves by the sign of local x.
U runs around the bone axis (over the half that a split part covers), V along it, from the
joint (0) to the far end of the part (1), so both follow the part as it moves (docs/body.md).

Solids that are not body surface (hair, a skirt, a hat brim) use tags from `ACCESSORY_TAG` up;
the dressing code adds them, and they never appear in a DensePose map.
"""

from dataclasses import dataclass
from itertools import pairwise

from .skeleton import Build

ACCESSORY_TAG = 100
"""Tags from here up are accessories (not body surface); 1..24 are DensePose part indices."""

# DensePose part indices (parts2whole.densepose.PART_NAMES lists their names).
TORSO_BACK, TORSO_FRONT = 1, 2
RIGHT_HAND, LEFT_HAND, LEFT_FOOT, RIGHT_FOOT = 3, 4, 5, 6
UPPER_LEG = {"right": (7, 9), "left": (8, 10)}  # (back, front)
LOWER_LEG = {"right": (11, 13), "left": (12, 14)}
UPPER_ARM = {"left": (17, 15), "right": (18, 16)}
LOWER_ARM = {"left": (21, 19), "right": (22, 20)}
HEAD_RIGHT, HEAD_LEFT = 23, 24


@dataclass(frozen=True)
class Ellipsoid:
    """Centre and semi-axes in the bone's local frame."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]


@dataclass(frozen=True)
class Tube:
    """An elliptic cone frustum along local y from `y0` to `y1`, about the axis through (x, z) = `axis`.

    The section at height y is an ellipse with semi-axes r(y) * `aspect` (x, z), r linear from
    `r0` to `r1`. Its ends are open: neighbouring solids (joints, caps) close them.
    """

    y0: float
    y1: float
    r0: float
    r1: float
    aspect: tuple[float, float] = (1.0, 1.0)
    axis: tuple[float, float] = (0.0, 0.0)


Shape = Ellipsoid | Tube


@dataclass(frozen=True)
class Solid:
    """One solid of the scene.

    `tag` is the DensePose part index, or an accessory tag; `split` names how a body part divides:
    "front_back" gives `tag` at local z >= 0 and `back_tag` behind, "left_right" gives `tag` at
    local x >= 0 and `back_tag` at x < 0, None keeps `tag` everywhere. `v_span` is the part's
    extent along local y, which V runs over (several solids of one part share it).
    """

    bone: str
    shape: Shape
    tag: int
    back_tag: int | None = None
    split: str | None = None
    v_span: tuple[float, float] = (0.0, 1.0)


def body_solids(build: Build) -> list[Solid]:
    """The 24 DensePose parts of `build` as solids (sizes in metres, scaled by height and factors)."""
    unit, limbs, girth = build.unit, build.unit * build.limbs, build.unit * build.girth
    solids: list[Solid] = []

    torso_span = (0.0, build.torso)
    # (fraction of torso length, half width, half depth): hips, waist, chest, shoulder line, neck base.
    rings = [
        (-0.06, build.hip_half_width + 0.075 * limbs, 0.10 * girth),
        (0.38, 0.125 * girth, 0.088 * girth),
        (0.72, max(0.15 * girth, build.shoulder_half_width - 0.035 * unit), 0.105 * girth),
        (0.90, build.shoulder_half_width + 0.02 * unit, 0.085 * girth),
        (1.0, 0.06 * unit, 0.055 * unit),
    ]
    lower_aspect = 0.1 * girth / rings[2][1]  # one depth-to-width ratio from hips to chest: no steps
    for (f0, w0, d0), (f1, w1, d1) in pairwise(rings):
        aspect_z = lower_aspect if f1 <= rings[2][0] else (d0 + d1) / (w0 + w1)
        tube = Tube(f0 * build.torso, f1 * build.torso, w0, w1, aspect=(1.0, aspect_z))
        solids.append(Solid("torso", tube, TORSO_FRONT, TORSO_BACK, "front_back", torso_span))
    hip_w = rings[0][1]
    chest_w = rings[2][1]
    caps = (
        Ellipsoid((0.0, -0.06 * build.torso, 0.0), (hip_w, 0.07 * unit, hip_w * lower_aspect)),  # closes the hips
        Ellipsoid((0.0, 0.74 * build.torso, 0.0), (chest_w, 0.2 * build.torso, chest_w * lower_aspect)),  # rounds the chest
    )
    solids += [Solid("torso", cap, TORSO_FRONT, TORSO_BACK, "front_back", torso_span) for cap in caps]

    neck = Tube(-0.01 * unit, build.neck + 0.02 * unit, 0.05 * girth ** 0.5 * unit, 0.045 * unit, aspect=(1.0, 1.05))
    head_height = 0.235 * unit * build.head
    head_centre = (0.0, build.neck + 0.45 * head_height, 0.012 * unit)
    head = Ellipsoid(head_centre, (0.078 * unit * build.head, head_height / 2, 0.098 * unit * build.head))
    head_span = (0.0, build.neck + 0.95 * head_height)
    for shape in (neck, head):
        solids.append(Solid("head", shape, HEAD_LEFT, HEAD_RIGHT, "left_right", head_span))

    for side in ("left", "right"):
        back_front = UPPER_ARM[side]
        span = (0.0, build.upper_arm)
        r_top, r_elbow = 0.048 * limbs, 0.037 * limbs
        arm = [Ellipsoid((0, 0.01 * unit, 0), (r_top * 1.05, r_top * 1.1, r_top)), Tube(0, build.upper_arm, r_top, r_elbow)]
        solids += [Solid(f"{side}_upper_arm", s, back_front[1], back_front[0], "front_back", span) for s in arm]
        back_front = LOWER_ARM[side]
        r_wrist = 0.026 * limbs
        forearm = [Ellipsoid((0, 0, 0), (r_elbow,) * 3), Tube(0, build.forearm, r_elbow * 1.02, r_wrist, aspect=(1.0, 0.85))]
        span = (0.0, build.forearm)
        solids += [Solid(f"{side}_forearm", s, back_front[1], back_front[0], "front_back", span) for s in forearm]
        hand_tag = LEFT_HAND if side == "left" else RIGHT_HAND
        hand = Ellipsoid((0, 0.48 * build.hand, 0), (0.042 * limbs, 0.52 * build.hand, 0.017 * limbs))
        solids.append(Solid(f"{side}_hand", hand, hand_tag, v_span=(0.0, build.hand)))

        back_front = UPPER_LEG[side]
        r_hip, r_knee = 0.085 * limbs * build.girth ** 0.5, 0.052 * limbs
        thigh = [Ellipsoid((0, 0.02 * unit, 0), (r_hip, r_hip, r_hip)), Tube(0.0, build.upper_leg, r_hip, r_knee)]
        span = (0.0, build.upper_leg)
        solids += [Solid(f"{side}_thigh", s, back_front[1], back_front[0], "front_back", span) for s in thigh]
        back_front = LOWER_LEG[side]
        r_calf, r_ankle = 0.056 * limbs, 0.034 * limbs
        calf_at = 0.3 * build.lower_leg
        shin = [
            Ellipsoid((0, 0, 0), (r_knee,) * 3),
            Tube(0.0, calf_at, r_knee, r_calf, axis=(0.0, -0.008 * unit)),
            Tube(calf_at, build.lower_leg, r_calf, r_ankle, axis=(0.0, -0.008 * unit)),
            Ellipsoid((0, build.lower_leg, 0), (r_ankle,) * 3),
        ]
        span = (0.0, build.lower_leg)
        solids += [Solid(f"{side}_shin", s, back_front[1], back_front[0], "front_back", span) for s in shin]
        foot_tag = LEFT_FOOT if side == "left" else RIGHT_FOOT
        foot_centre = (0.0, 0.3 * build.foot, -0.5 * build.ankle_height)
        foot = Ellipsoid(foot_centre, (0.045 * limbs, 0.5 * build.foot, 0.045 * unit))
        solids.append(Solid(f"{side}_foot", foot, foot_tag, v_span=(-0.2 * build.foot, build.foot)))
    return solids
