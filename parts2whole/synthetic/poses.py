"""Random poses and views for synthetic photos: mostly people standing, walking or moving their arms,
seen mostly from the front, with some side and back views and a few unusual poses."""

from dataclasses import asdict, fields

import numpy as np

from ..body import Camera, Pose
from ..body.appearance import pick
from ..body.presets import PRESETS


def _standing(rng: np.random.Generator) -> dict[str, float]:
    """Upright, weight on both legs, each arm somewhere between hanging and half raised."""
    angles = {
        "torso_lean": rng.normal(2, 4), "torso_side": rng.normal(0, 3), "torso_twist": rng.normal(0, 8),
        "head_yaw": rng.normal(0, 15), "head_tilt": rng.normal(2, 8), "head_roll": rng.normal(0, 5),
    }  # fmt: skip
    for side in ("left", "right"):
        angles |= {
            f"{side}_shoulder_abduct": rng.uniform(0, 40), f"{side}_shoulder_flex": rng.normal(0, 15),
            f"{side}_shoulder_twist": rng.normal(0, 25), f"{side}_elbow": rng.uniform(0, 60),
            f"{side}_hip_flex": rng.normal(0, 5), f"{side}_hip_abduct": rng.uniform(0, 10),
            f"{side}_knee": rng.uniform(0, 12), f"{side}_ankle": rng.normal(0, 4),
        }  # fmt: skip
    return angles


def _walking(rng: np.random.Generator) -> dict[str, float]:
    """A stride: one leg forward, the other back with its knee bent, the arms swinging the other way."""
    stride = rng.uniform(-1, 1)
    angles = _standing(rng)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        forward = sign * stride
        angles |= {
            f"{side}_hip_flex": 28 * forward + rng.normal(0, 3),
            f"{side}_knee": rng.uniform(3, 12) if forward > 0 else rng.uniform(10, 40) * -forward,
            f"{side}_ankle": -12 * max(-forward, 0) + rng.normal(0, 3),
            f"{side}_shoulder_flex": -25 * forward + rng.normal(0, 5),
            f"{side}_shoulder_abduct": rng.uniform(3, 15),
            f"{side}_elbow": rng.uniform(8, 40),
        }
    return angles


def _preset(rng: np.random.Generator) -> dict[str, float]:
    """One of the named poses (arms out, hands on hips, waving, arms crossed...), a little varied."""
    pose = pick(rng, list(PRESETS.values())).pose
    return {name: value + rng.normal(0, 6) for name, value in asdict(pose).items()}


def _free(rng: np.random.Generator) -> dict[str, float]:
    """Any angle in most of its range: the rare, unusual poses a model should still have seen."""
    defaults = asdict(Pose())
    angles = {}
    for name, (low, high) in Pose.ranges().items():
        bound = pick(rng, (low, high))
        angles[name] = defaults[name] + rng.uniform(0, 0.8) * (bound - defaults[name])
    return angles


FAMILIES = {"standing": (_standing, 4.0), "walking": (_walking, 2.5), "preset": (_preset, 2.5), "free": (_free, 1.0)}
"""Pose families and how often each is drawn."""


def random_pose(rng: np.random.Generator, families: tuple[str, ...] = tuple(FAMILIES)) -> Pose:
    """A pose from one of `families`, drawn by their weights; every angle within its human range."""
    family = pick(rng, families, [FAMILIES[name][1] for name in families])
    angles = FAMILIES[family][0](rng)
    return Pose(**{f.name: float(angles[f.name]) for f in fields(Pose)}).clamped()


def random_camera(rng: np.random.Generator) -> Camera:
    """A view: about half from the front, a quarter three-quarter, 10% side and 15% back."""
    view = pick(rng, ("front", "three-quarter", "side", "back"), (50, 25, 10, 15))
    side = pick(rng, (-1.0, 1.0))
    yaw = {
        "front": rng.normal(0, 12),
        "three-quarter": side * rng.uniform(25, 60),
        "side": side * rng.uniform(70, 110),
        "back": 180 + rng.normal(0, 15),
    }[view]
    return Camera(
        yaw=float(yaw),
        pitch=float(np.clip(rng.normal(0, 4), -12, 12)),
        zoom=float(rng.uniform(0.9, 1.05)),
        shift=(float(rng.normal(0, 0.02)), float(rng.normal(0, 0.015))),
    )


def reference_view(rng: np.random.Generator) -> tuple[Pose, Camera]:
    """The pose and view of a person's reference photo: standing or a named pose, from the front-ish,
    so that every part shows."""
    pose = random_pose(rng, ("standing", "preset"))
    return pose, Camera(yaw=float(rng.normal(0, 15)), pitch=float(np.clip(rng.normal(0, 3), -8, 8)))
