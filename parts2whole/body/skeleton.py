"""The body's skeleton: proportions, joint angles with human limits, and forward kinematics.

Body space is right-handed, in metres: +Y up, +X the person's left, +Z the way the person faces.
Every bone has a frame whose local +y runs along the bone from its joint to its child and whose
local +z points to the front of the body when standing at rest, so "front" and "back" parts can
be told apart by the sign of local z (see `solids.py`). A pose is a set of joint angles in
degrees; `bone_frames` turns a build and a pose into each bone's world origin and rotation.
"""

from dataclasses import dataclass, field, fields

import numpy as np


def rotation(axis: str, degrees: float) -> np.ndarray:
    """A 3x3 rotation about the x, y or z axis (right-handed, degrees)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def limit(low: float, high: float, default: float = 0.0):
    """A dataclass field whose range the sampler and the sliders use."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass
class Build:
    """Body proportions. Lengths scale with `height`; the factors are relative to an average adult."""

    height: float = limit(1.50, 1.95, 1.72)
    shoulders: float = limit(0.85, 1.2, 1.0)  # shoulder width
    hips: float = limit(0.85, 1.25, 1.0)  # hip width
    limbs: float = limit(0.8, 1.3, 1.0)  # limb thickness
    girth: float = limit(0.85, 1.4, 1.0)  # torso width and depth: slim to heavy
    head: float = limit(0.9, 1.15, 1.0)  # head size
    legs: float = limit(0.94, 1.06, 1.0)  # leg length relative to the torso

    @property
    def unit(self) -> float:
        """Metres per unit of the average 1.72 m body the dimensions in `solids.py` are given for."""
        return self.height / 1.72

    # Bone lengths, in metres.
    @property
    def upper_leg(self) -> float:
        return 0.245 * self.height * self.legs

    @property
    def lower_leg(self) -> float:
        return 0.245 * self.height * self.legs

    @property
    def ankle_height(self) -> float:
        return 0.045 * self.height

    @property
    def torso(self) -> float:
        return 0.30 * self.height

    @property
    def neck(self) -> float:
        return 0.045 * self.height

    @property
    def upper_arm(self) -> float:
        return 0.17 * self.height

    @property
    def forearm(self) -> float:
        return 0.145 * self.height

    @property
    def hand(self) -> float:
        return 0.105 * self.height

    @property
    def foot(self) -> float:
        return 0.15 * self.height

    @property
    def shoulder_half_width(self) -> float:
        return 0.115 * self.height * self.shoulders

    @property
    def hip_half_width(self) -> float:
        return 0.052 * self.height * self.hips

    @property
    def hip_joint_height(self) -> float:
        return self.ankle_height + self.lower_leg + self.upper_leg


@dataclass
class Pose:
    """Joint angles in degrees, each within a human range (`Pose.ranges()`).

    Shoulders and hips: `abduct` swings the limb out to the side, `flex` forwards (negative:
    backwards), `twist` turns it about its own axis (which changes where the elbow bends).
    Elbows and knees bend from 0 (straight). Head: `yaw` turns it left, `tilt` nods it down,
    `roll` leans it to its left shoulder. Torso: `lean` forwards, `side` to its left, `twist` left.
    """

    torso_lean: float = limit(-15, 25)
    torso_side: float = limit(-15, 15)
    torso_twist: float = limit(-35, 35)
    head_yaw: float = limit(-60, 60)
    head_tilt: float = limit(-25, 30)
    head_roll: float = limit(-20, 20)
    left_shoulder_abduct: float = limit(-40, 170, 8)
    left_shoulder_flex: float = limit(-50, 170)
    left_shoulder_twist: float = limit(-90, 90)
    left_elbow: float = limit(0, 150, 8)
    right_shoulder_abduct: float = limit(-40, 170, 8)
    right_shoulder_flex: float = limit(-50, 170)
    right_shoulder_twist: float = limit(-90, 90)
    right_elbow: float = limit(0, 150, 8)
    left_hip_flex: float = limit(-30, 100)
    left_hip_abduct: float = limit(-15, 45, 3)
    left_knee: float = limit(0, 130)
    left_ankle: float = limit(-30, 40)
    right_hip_flex: float = limit(-30, 100)
    right_hip_abduct: float = limit(-15, 45, 3)
    right_knee: float = limit(0, 130)
    right_ankle: float = limit(-30, 40)

    @classmethod
    def ranges(cls) -> dict[str, tuple[float, float]]:
        return {f.name: f.metadata["range"] for f in fields(cls)}

    def clamped(self) -> "Pose":
        """The same pose with every angle brought into its range."""
        ranges = self.ranges()
        return Pose(**{name: float(np.clip(getattr(self, name), *ranges[name])) for name in ranges})


@dataclass(frozen=True)
class Frame:
    """A bone's placement: world origin (its joint) and rotation (columns = local axes in world)."""

    origin: np.ndarray
    rotation: np.ndarray
    length: float


def side_angles(pose: Pose, side: str) -> list[tuple[str, float]]:
    """The angles of one side's joints, named without the side ("elbow", "hip_flex", ...)."""
    prefix = f"{side}_"
    return [(name.removeprefix(prefix), value) for name, value in vars(pose).items() if name.startswith(prefix)]


ARM_REST = rotation("z", 180)  # a limb hanging down: local +y points down, local +z stays forward
FOOT_REST = rotation("x", 90)  # the foot points forward from the ankle, its local +z up


def bone_frames(build: Build, pose: Pose) -> dict[str, Frame]:
    """Forward kinematics: every bone's frame for `build` in `pose` (standing on y = 0 at rest)."""
    pose = pose.clamped()
    frames: dict[str, Frame] = {}

    def add(name: str, parent: str | None, offset, joint: np.ndarray, rest: np.ndarray, length: float) -> None:
        if parent is None:
            origin, parent_rotation = np.asarray(offset, float), np.eye(3)
        else:
            up = frames[parent]
            origin, parent_rotation = up.origin + up.rotation @ np.asarray(offset, float), up.rotation
        frames[name] = Frame(origin, parent_rotation @ joint @ rest, length)

    pelvis_height = build.hip_joint_height + 0.02 * build.height
    add("pelvis", None, (0, pelvis_height, 0), np.eye(3), np.eye(3), 0.0)
    torso_joint = rotation("y", pose.torso_twist) @ rotation("x", pose.torso_lean) @ rotation("z", -pose.torso_side)
    add("torso", "pelvis", (0, 0, 0), torso_joint, np.eye(3), build.torso)
    head_joint = rotation("y", pose.head_yaw) @ rotation("x", pose.head_tilt) @ rotation("z", -pose.head_roll)
    add("head", "torso", (0, build.torso, 0), head_joint, np.eye(3), build.neck)

    for side, sign in (("left", 1.0), ("right", -1.0)):
        angle = dict(side_angles(pose, side)).__getitem__
        shoulder = (
            rotation("z", sign * angle("shoulder_abduct"))
            @ rotation("x", -angle("shoulder_flex"))
            @ rotation("y", sign * angle("shoulder_twist"))
        )
        shoulder_at = (sign * build.shoulder_half_width, build.torso - 0.035 * build.height, 0)
        add(f"{side}_upper_arm", "torso", shoulder_at, shoulder, ARM_REST, build.upper_arm)
        add(f"{side}_forearm", f"{side}_upper_arm", (0, build.upper_arm, 0), rotation("x", angle("elbow")), np.eye(3), build.forearm)
        add(f"{side}_hand", f"{side}_forearm", (0, build.forearm, 0), np.eye(3), np.eye(3), build.hand)

        hip = rotation("z", sign * angle("hip_abduct")) @ rotation("x", -angle("hip_flex"))
        hip_at = (sign * build.hip_half_width, -0.02 * build.height, 0)
        add(f"{side}_thigh", "pelvis", hip_at, hip, ARM_REST, build.upper_leg)
        add(f"{side}_shin", f"{side}_thigh", (0, build.upper_leg, 0), rotation("x", -angle("knee")), np.eye(3), build.lower_leg)
        add(f"{side}_foot", f"{side}_shin", (0, build.lower_leg, 0), rotation("x", angle("ankle")), FOOT_REST, build.foot)
    return frames
