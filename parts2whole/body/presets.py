"""Named poses and the pose maker's controls: a few sliders over a preset, for people who have no
DensePose map of the pose they want (docs/body.md)."""

from dataclasses import dataclass, replace

from .render import Camera
from .skeleton import Build, Pose


@dataclass(frozen=True)
class Preset:
    pose: Pose
    yaw: float = 0.0


PRESETS: dict[str, Preset] = {
    "standing": Preset(Pose()),
    "walking": Preset(
        Pose(left_hip_flex=22, right_hip_flex=-14, left_knee=6, right_knee=15, right_ankle=-10,
             left_shoulder_flex=-20, right_shoulder_flex=22, left_elbow=12, right_elbow=25, head_yaw=-10),
        yaw=25,
    ),
    "arms out": Preset(Pose(left_shoulder_abduct=85, right_shoulder_abduct=85, left_elbow=5, right_elbow=5,
                            left_hip_abduct=8, right_hip_abduct=8)),
    "hands on hips": Preset(
        Pose(left_shoulder_abduct=40, right_shoulder_abduct=40, left_shoulder_twist=-80, right_shoulder_twist=-80,
             left_elbow=105, right_elbow=105, left_hip_abduct=7, right_hip_abduct=7)
    ),
    "waving": Preset(Pose(right_shoulder_abduct=115, right_elbow=80, right_shoulder_twist=80, head_roll=-5,
                          left_hip_abduct=6), yaw=10),
    "arms crossed": Preset(
        Pose(left_shoulder_flex=40, right_shoulder_flex=45, left_shoulder_abduct=-8, right_shoulder_abduct=-8,
             left_shoulder_twist=-75, right_shoulder_twist=-75, left_elbow=120, right_elbow=115)
    ),
    "arms up": Preset(Pose(left_shoulder_abduct=155, right_shoulder_abduct=155, left_elbow=10, right_elbow=10)),
    "stepping forward": Preset(
        Pose(left_hip_flex=45, left_knee=50, left_ankle=10, right_hip_flex=-8, left_shoulder_flex=-15,
             right_shoulder_flex=25, right_elbow=30, torso_lean=5), yaw=-40,
    ),
    "relaxed": Preset(Pose(torso_side=4, head_roll=6, left_hip_abduct=10, right_hip_abduct=-2, right_knee=12,
                           right_shoulder_flex=10, right_elbow=30, left_elbow=15), yaw=-15),
    "three-quarter view": Preset(Pose(left_elbow=12, right_elbow=12), yaw=35),
    "side view": Preset(Pose(left_shoulder_flex=5, right_shoulder_flex=-5), yaw=90),
    "back view": Preset(Pose(), yaw=180),
}
"""Poses people ask for; none of them sits (the body has no chair to sit on)."""


@dataclass(frozen=True)
class Control:
    """One slider of the pose maker: what it sets, its label and range."""

    name: str
    label: str
    low: float
    high: float


def _pose_control(name: str, label: str) -> Control:
    low, high = Pose.ranges()[name]
    return Control(name, label, low, high)


CONTROLS: tuple[Control, ...] = (
    Control("yaw", "View: 0 front, 90 the person's left side, 180 back", -180, 180),
    _pose_control("head_yaw", "Head turn"),
    _pose_control("head_tilt", "Head nod"),
    _pose_control("left_shoulder_abduct", "Left arm out (the person's left)"),
    _pose_control("left_shoulder_flex", "Left arm forward"),
    _pose_control("left_elbow", "Left elbow"),
    _pose_control("right_shoulder_abduct", "Right arm out"),
    _pose_control("right_shoulder_flex", "Right arm forward"),
    _pose_control("right_elbow", "Right elbow"),
    _pose_control("left_hip_flex", "Left leg forward"),
    _pose_control("left_knee", "Left knee"),
    _pose_control("right_hip_flex", "Right leg forward"),
    _pose_control("right_knee", "Right knee"),
    _pose_control("torso_lean", "Lean forward"),
    Control("girth", "Build: slim to heavy", *Build.__dataclass_fields__["girth"].metadata["range"]),
)
"""The pose maker's sliders, in the order shown."""


def control_values(preset: str) -> list[float]:
    """The sliders' values that show `preset` (an average build)."""
    chosen = PRESETS[preset]
    everything = {**vars(chosen.pose), "yaw": chosen.yaw, "girth": Build().girth}
    return [float(everything[control.name]) for control in CONTROLS]


def from_controls(preset: str, values: list[float]) -> tuple[Pose, Camera, Build]:
    """The pose, camera and build that `values` (one per control) set over `preset`."""
    if len(values) != len(CONTROLS):
        raise ValueError(f"Expected {len(CONTROLS)} control values, got {len(values)}.")
    given = {control.name: min(max(float(value), control.low), control.high) for control, value in zip(CONTROLS, values, strict=True)}
    yaw, girth = given.pop("yaw"), given.pop("girth")
    return replace(PRESETS[preset].pose, **given).clamped(), Camera(yaw=yaw), Build(girth=girth)
