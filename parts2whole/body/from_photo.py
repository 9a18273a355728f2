"""Pose from a photo: MediaPipe's body landmarks, and the body of `skeleton.py` fitted to them.

The map this gives is an approximation of DensePose: the posable body's exact DensePose surface,
posed, proportioned and placed to match a person found in a photo, not a DensePose network's
reading of the photo. Steps (`fit_body`):

1. MediaPipe Pose (`detect`) gives 33 landmarks: pixel positions, a visibility, and 3D positions in
   metres about the hips, plus a person mask. Its LEFT_* landmarks are the person's left.
2. Bone directions: the direction in the image plane is the 2D landmarks' (exact in the photo);
   the slant towards or away from the camera, which a photo does not show, is MediaPipe's 3D guess
   damped, or what the bone's foreshortening says where it is clearly shorter than the body's.
3. The view (camera yaw) comes from the hip line, the torso's lean, side bend and twist from the
   shoulder line and the hips-to-shoulders direction, the head from ears and eyes; every limb's
   joint angles by inverting `skeleton.bone_frames` analytically, then clamped to human ranges.
4. Proportions (shoulder and hip width, leg length) from the landmarks, limb thickness and girth
   from the width of the person mask across the limbs and the waist.
5. Placement: the scale and shift that bring the body's joints onto the landmarks (least squares),
   turned into the `Camera` that `render.Figure` takes, for the photo's frame or any other size.

Needs `mediapipe==0.10.21` (the last release with the pose model in its wheel), installed with
`pip install --no-deps -r requirements-pose.txt` next to `protobuf>=4.25.3,<5` (requirements.txt).
"""

import threading
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps

from .render import Camera, Figure, Projection, iuv_image
from .skeleton import Build, Pose, bone_frames, rotation
from .solids import body_solids

INSTALL = "pip install --no-deps -r requirements-pose.txt"
MAX_SIDE = 1280  # larger photos are brought down to this before MediaPipe sees them

# MediaPipe Pose landmark indices (mediapipe.solutions.pose.PoseLandmark).
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 2, 5, 7, 8
SHOULDER, ELBOW, WRIST = {"left": 11, "right": 12}, {"left": 13, "right": 14}, {"left": 15, "right": 16}
HIP, KNEE, ANKLE = {"left": 23, "right": 24}, {"left": 25, "right": 26}, {"left": 27, "right": 28}
HEEL, FOOT_INDEX = {"left": 29, "right": 30}, {"left": 31, "right": 32}
SIDES = (("left", 1.0), ("right", -1.0))


class NoPersonFound(ValueError):
    """MediaPipe found no person in the photo."""


@dataclass
class Landmarks:
    """MediaPipe's reading of a photo: `pixels` (33, 2) in the photo (x right, y down), `world`
    (33, 3) in metres in camera axes (x right, y up, z towards the camera), `visibility` (33,), and
    the person `mask` (H, W) in [0, 1] at the photo's size (None if MediaPipe gave none)."""

    pixels: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray | None
    size: tuple[int, int]  # the photo's (width, height)


@dataclass
class PhotoPose:
    """The body fitted to a photo: render it with `densepose()`, or pose, build and camera as for
    `render.render_pose`. `landmarks` (33, 2) are MediaPipe's, in the pixels of this map's frame."""

    pose: Pose
    build: Build
    camera: Camera
    size: tuple[int, int]  # the map's (width, height)
    landmarks: np.ndarray
    visibility: np.ndarray

    def figure(self) -> Figure:
        return Figure(self.build, self.pose, self.camera, self.size)

    def densepose(self) -> Image.Image:
        """The DensePose IUV map (RGB, the released format) at `size`."""
        return iuv_image(self.figure().surface())


# ------------------------------------------------------------------------------ MediaPipe

_detector = None
_lock = threading.Lock()


def _new_detector():
    """MediaPipe's pose model; every way it can fail to load is an ImportError saying what to install."""
    needs = f"It needs mediapipe==0.10.21 and protobuf>=4.25.3,<5: `pip install 'protobuf>=4.25.3,<5'` then `{INSTALL}`."
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(
            f"Pose from a photo needs MediaPipe, which is not installed ({error}). Install it with "
            f"`{INSTALL}` (with the protobuf<5 of requirements.txt)."
        ) from error
    except Exception as error:  # a protobuf it cannot use
        raise ImportError(f"MediaPipe could not be loaded ({type(error).__name__}: {error}). {needs}") from error
    try:
        return mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)
    except Exception as error:  # a protobuf it cannot use, a release without the pose model
        raise ImportError(f"MediaPipe could not start its pose model ({type(error).__name__}: {error}). {needs}") from error


def detect(photo: Image.Image) -> Landmarks:
    """MediaPipe Pose on `photo` (one person; the most prominent if there are several).

    Raises NoPersonFound (a ValueError) when it finds no one, ImportError with the command that
    installs it when MediaPipe is missing. One model is loaded on first use and shared (with a lock).
    """
    global _detector
    photo = _rgb(photo)
    width, height = photo.size
    seen = photo
    if max(photo.size) > MAX_SIDE:
        seen = ImageOps.contain(photo, (MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    with _lock:
        if _detector is None:
            _detector = _new_detector()
        result = _detector.process(np.ascontiguousarray(np.asarray(seen)))
        if result.pose_landmarks is None or result.pose_world_landmarks is None:
            raise NoPersonFound(
                "No person was found in the photo: use a photo where one person is clearly visible, "
                "head to at least the hips, not too small in the frame."
            )
        image_points = result.pose_landmarks.landmark
        world_points = result.pose_world_landmarks.landmark
        pixels = np.array([(p.x * width, p.y * height) for p in image_points], dtype=np.float64)
        visibility = np.array([p.visibility for p in image_points], dtype=np.float64)
        # MediaPipe's world axes follow the image (y down, z away from the camera).
        world = np.array([(p.x, -p.y, -p.z) for p in world_points], dtype=np.float64)
        mask = None if result.segmentation_mask is None else np.array(result.segmentation_mask, dtype=np.float32)
    if mask is not None and mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.BILINEAR))
    return Landmarks(pixels, world, visibility, mask, (width, height))


def _rgb(photo: Image.Image) -> Image.Image:
    """Upright RGB; transparency over light grey (a cut-out person stays a person)."""
    photo = ImageOps.exif_transpose(photo)
    if photo.mode in ("RGBA", "LA", "PA") or (photo.mode == "P" and "transparency" in photo.info):
        backdrop = Image.new("RGBA", photo.size, (215, 215, 215, 255))
        return Image.alpha_composite(backdrop, photo.convert("RGBA")).convert("RGB")
    return photo.convert("RGB")


# ------------------------------------------------------------------------------ the fit

# How MediaPipe reads this body (measured on shaded renders of it with a face drawn on; the round
# trip in tests/test_pose_from_photo.py keeps them honest). Its shoulder landmarks lie inside the
# shoulder joints and its hip landmarks outside the hip joints (spacing of the landmarks / spacing
# of the joints); its leg length per torso length is LEG_RATIO at legs = 1.
SHOULDER_SPACING = 0.9
HIP_SPACING = 1.1
LEG_RATIO = 0.93
# A single photo shows no depth: MediaPipe's slant of a bone towards or away from the camera is a
# guess, often off by 15 degrees or more, so only DEPTH_GAIN of it is kept, after taking off the
# slant it adds on its own (degrees: shoulders ahead of the hips, ankles behind the knees, hands
# ahead of the elbows). A bone clearly shorter in the photo than the body's is slanted by as much
# as its foreshortening says (and by at most that when it is as long), on MediaPipe's side.
DEPTH_GAIN = 0.6
SLANT_BIAS = {"torso": 8.0, "shin": -10.0, "forearm": 5.0}
# The eyes sit higher than the ears' landmarks: a head held level looks this many degrees up.
EYES_ABOVE_EARS = 15.0
# MediaPipe's person mask runs a little wider than the body's limbs (the width ratio it gives for
# the body's own; at the waist it gives 1).
LIMB_SPREAD = 1.06


def pose_from_photo(photo: Image.Image, size: tuple[int, int] | None = None, frame: str = "photo") -> PhotoPose:
    """The body fitted to the person in `photo`, for a map of `size` (width, height; default the photo's).

    frame "photo": the map lines up with the photo (at another size, with the photo scaled to fit
    that size without distortion and centred, as `ImageOps.pad` does). frame "person": the person
    centred and filling the frame with a margin, as the pose maker shows a body.
    """
    return fit_body(detect(photo), size, frame)


def densepose_from_photo(photo: Image.Image, size: tuple[int, int] | None = None, frame: str = "photo") -> Image.Image:
    """The DensePose IUV map of the body fitted to the person in `photo` (see `pose_from_photo`)."""
    return pose_from_photo(photo, size, frame).densepose()


def fit_body(marks: Landmarks, size: tuple[int, int] | None = None, frame: str = "photo") -> PhotoPose:
    """Pose, build and camera of the body that matches `marks` (see the module's docstring)."""
    if frame not in ("photo", "person"):
        raise ValueError(f"frame must be 'photo' or 'person', not {frame!r}")
    size = (int(size[0]), int(size[1])) if size else marks.size
    build, scale = Build(), None
    for _ in range(3):  # pose, proportions and scale depend on each other a little
        yaw = _view(marks, build, scale)
        pose = _joint_angles(marks, yaw, build, scale)
        scale, offset = _placement(marks, build, pose, yaw)
        build = _proportions(marks, build, scale)
    scale, offset = _placement(marks, build, pose, yaw)
    if marks.mask is not None:
        build = _thickness(marks, build, pose, _camera_for(build, pose, yaw, marks.size, scale, offset))
    # Into the requested frame: the photo scaled to fit it and centred.
    fit = min(size[0] / marks.size[0], size[1] / marks.size[1])
    pad = (np.array(size) - fit * np.array(marks.size)) / 2
    landmarks = marks.pixels * fit + pad
    if frame == "person":
        camera = Camera(yaw=yaw)
        new_scale, new_offset = _linear(Figure(build, pose, camera, size).projection)
        landmarks = (landmarks - (offset * fit + pad)) * (new_scale / (scale * fit)) + new_offset
    else:
        camera = _camera_for(build, pose, yaw, size, scale * fit, offset * fit + pad)
    return PhotoPose(pose, build, camera, size, landmarks, marks.visibility.copy())


def _slant(marks: Landmarks, start, end) -> tuple[np.ndarray, float]:
    """The 2D vector (pixels, y up) from landmark(s) `start` to `end` (an index or a list to average)
    and MediaPipe's slant of it in depth (degrees, + towards the camera)."""
    a, b = list(np.atleast_1d(start)), list(np.atleast_1d(end))
    flat = marks.pixels[b].mean(0) - marks.pixels[a].mean(0)
    world = marks.world[b].mean(0) - marks.world[a].mean(0)
    return np.array([flat[0], -flat[1]]), float(np.degrees(np.arctan2(world[2], np.hypot(world[0], world[1]))))


def _direction(marks: Landmarks, start, end, gain: float = DEPTH_GAIN, bias: float = 0.0, expected: float | None = None) -> np.ndarray:
    """Unit vector (camera axes) from landmark(s) `start` to `end`: in the image plane as the 2D
    landmarks go, slanted in depth by `gain` x (MediaPipe's slant - `bias`), and, when `expected`
    (the bone's length in pixels) is given, by as much as its foreshortening says."""
    flat, slant = _slant(marks, start, end)
    flat_length = float(np.hypot(*flat))
    if flat_length < 1e-6:
        world = marks.world[list(np.atleast_1d(end))].mean(0) - marks.world[list(np.atleast_1d(start))].mean(0)
        return world / max(np.linalg.norm(world), 1e-9)
    angle = gain * (slant - bias)
    if expected:
        ratio = flat_length / expected
        angle = np.clip(angle, *(np.array([-1, 1]) * np.degrees(np.arccos(np.clip(ratio / 1.15, 0.0, 1.0)))))
        trust = np.clip((0.85 - ratio) / 0.25, 0.0, 1.0)  # full below 0.6 of the length
        if trust > 0:
            side = np.sign(angle) or np.sign(slant) or -1.0
            angle = side * max(abs(angle), (1 - trust) * abs(angle) + trust * np.degrees(np.arccos(np.clip(ratio, 0.0, 1.0))))
    angle = np.radians(angle)
    return np.array([*(np.cos(angle) * flat / flat_length), np.sin(angle)])


def _view(marks: Landmarks, build: Build, scale: float | None) -> float:
    """Camera yaw (degrees): 0 in front of the person, 90 at their left, 180 behind. The body's +X
    (the person's left) is seen along (cos yaw, 0, sin yaw) in camera axes."""
    def expected(width: float) -> float | None:
        return None if scale is None else width * scale

    hips = _direction(marks, HIP["right"], HIP["left"], 1.0, 0.0, expected(2 * build.hip_half_width * HIP_SPACING))
    shoulders = _direction(marks, SHOULDER["right"], SHOULDER["left"], 1.0, 0.0,
                           expected(2 * build.shoulder_half_width * SHOULDER_SPACING))  # fmt: skip
    line = hips + 0.5 * shoulders  # the pelvis sets the body's frame; the shoulders steady it
    return float(np.degrees(np.arctan2(line[2], line[0])))


def _euler_yxz(matrix: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) in degrees with matrix = R_y(a) R_x(b) R_z(c)."""
    b = np.arcsin(np.clip(-matrix[1, 2], -1.0, 1.0))
    a = np.arctan2(matrix[0, 2], matrix[2, 2])
    c = np.arctan2(matrix[1, 0], matrix[1, 1])
    return float(np.degrees(a)), float(np.degrees(b)), float(np.degrees(c))


def _frame(x_axis: np.ndarray, y_axis: np.ndarray) -> np.ndarray:
    """Rotation whose local +y is `y_axis` and whose local +x is `x_axis` made perpendicular to it."""
    y = y_axis / np.linalg.norm(y_axis)
    x = x_axis - (x_axis @ y) * y
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    return np.stack([x, y, np.cross(x, y)], axis=1)


def _swing(direction: np.ndarray, sign: float) -> list[tuple[float, float]]:
    """(abduct, flex) pairs that point a limb hanging from R_z(sign abduct) R_x(-flex) @ ARM_REST
    along `direction` (in its parent's frame): the limb's axis is (cos f sin(sign a), -cos f cos(sign a), sin f)."""
    flex = np.degrees(np.arcsin(np.clip(direction[2], -1.0, 1.0)))
    abduct = sign * np.degrees(np.arctan2(direction[0], -direction[1]))
    other = (abduct - 180.0 if abduct > 0 else abduct + 180.0, (180.0 if flex >= 0 else -180.0) - flex)
    return [(float(abduct), float(flex)), (float(other[0]), float(other[1]))]


def _outside(value: float, low: float, high: float) -> float:
    return max(low - value, 0.0, value - high)


def _joint_angles(marks: Landmarks, yaw: float, build: Build, scale: float | None) -> Pose:
    """Joint angles of the body, seen from `yaw`, whose bones point along the landmarks (see
    `_direction`; `scale`, pixels per metre, once known, lets foreshortening count)."""
    to_world = Camera(yaw=yaw).rotation().T  # camera axes -> body space
    ranges = Pose.ranges()

    def along(start, end, bone: str | None = None, length: float | None = None, gain: float = DEPTH_GAIN) -> np.ndarray:
        expected = None if scale is None or length is None else length * scale
        return to_world @ _direction(marks, start, end, gain, SLANT_BIAS.get(bone, 0.0), expected)

    angles: dict[str, float] = {}
    hips, shoulders = [HIP["left"], HIP["right"]], [SHOULDER["left"], SHOULDER["right"]]
    across = along(SHOULDER["right"], SHOULDER["left"], gain=1.0)
    torso = _frame(across, along(hips, shoulders, "torso", 0.285 * build.height))
    twist, lean, side = _euler_yxz(torso)
    angles.update(torso_twist=twist, torso_lean=lean, torso_side=-side)

    ears, eyes = [LEFT_EAR, RIGHT_EAR], [LEFT_EYE, RIGHT_EYE]
    across, forward = along(RIGHT_EAR, LEFT_EAR, gain=1.0), along(ears, eyes, gain=1.0)
    forward = forward - (forward @ across) * across
    head = torso.T @ _frame(across, np.cross(forward, across))
    head_yaw, head_tilt, head_roll = _euler_yxz(head)
    angles.update(head_yaw=head_yaw, head_tilt=head_tilt + EYES_ABOVE_EARS, head_roll=-head_roll)

    for side_name, sign in SIDES:
        upper = torso.T @ along(SHOULDER[side_name], ELBOW[side_name], "upper_arm", build.upper_arm)
        lower = torso.T @ along(ELBOW[side_name], WRIST[side_name], "forearm", build.forearm)
        best = None
        for abduct, flex in _swing(upper, sign):
            # The forearm in the upper arm's frame before its twist (its axis is local -y there).
            seen = (rotation("z", sign * abduct) @ rotation("x", -flex)).T @ lower
            bend = np.degrees(np.arctan2(np.hypot(seen[0], seen[2]), -seen[1]))
            spin = sign * np.degrees(np.arctan2(seen[0], seen[2])) if bend > 15 else 0.0
            # Out of range, the upper arm's angles move the whole arm, the twist only the forearm.
            cost = (
                _outside(abduct, *ranges[f"{side_name}_shoulder_abduct"])
                + _outside(flex, *ranges[f"{side_name}_shoulder_flex"])
                + 0.2 * _outside(spin, *ranges[f"{side_name}_shoulder_twist"])
            )
            if best is None or cost < best[0] - 1e-6:
                best = (cost, abduct, flex, spin, bend)
        _, abduct, flex, spin, bend = best
        angles.update({
            f"{side_name}_shoulder_abduct": abduct, f"{side_name}_shoulder_flex": flex,
            f"{side_name}_shoulder_twist": spin, f"{side_name}_elbow": bend,
        })  # fmt: skip

        thigh_axis = along(HIP[side_name], KNEE[side_name], "thigh", build.upper_leg)
        options = [(_outside(a, *ranges[f"{side_name}_hip_abduct"]) + _outside(f, *ranges[f"{side_name}_hip_flex"]), a, f)
                   for a, f in _swing(thigh_axis, sign)]  # fmt: skip
        _, abduct, flex = min(options)
        abduct, flex = np.clip(abduct, *ranges[f"{side_name}_hip_abduct"]), np.clip(flex, *ranges[f"{side_name}_hip_flex"])
        thigh = rotation("z", sign * abduct) @ rotation("x", -flex) @ rotation("z", 180)
        shin_axis = thigh.T @ along(KNEE[side_name], ANKLE[side_name], "shin", build.lower_leg)
        knee = np.degrees(np.arctan2(max(-shin_axis[2], 0.0), shin_axis[1]))
        shin = thigh @ rotation("x", -np.clip(knee, *ranges[f"{side_name}_knee"]))
        foot_axis = shin.T @ along(HEEL[side_name], FOOT_INDEX[side_name], gain=1.0)
        ankle = np.degrees(np.arctan2(-foot_axis[1], foot_axis[2]))
        # A foot seen end on (from the front or back) shows no angle worth the name: trust it as
        # much as it lies across the image.
        flat, _ = _slant(marks, HEEL[side_name], FOOT_INDEX[side_name])
        ankle *= float(np.clip(np.hypot(*flat) / (0.12 * build.height * scale), 0.0, 1.0)) if scale else 0.0
        angles.update({
            f"{side_name}_hip_abduct": abduct, f"{side_name}_hip_flex": flex,
            f"{side_name}_knee": knee, f"{side_name}_ankle": ankle,
        })  # fmt: skip
    return Pose(**{name: float(value) for name, value in angles.items()}).clamped()


# ------------------------------------------------------------------------ proportions, placement


def _anchors(build: Build) -> dict[int, tuple[str, tuple[float, float, float], float]]:
    """Landmark -> (bone, the point of that bone's frame MediaPipe marks, weight in the placement fit)."""
    head_centre = (0.0, build.neck + 0.45 * 0.235 * build.unit * build.head, 0.0)
    anchors = {LEFT_EAR: ("head", head_centre, 0.5), RIGHT_EAR: ("head", head_centre, 0.5)}
    shoulder_y = build.torso - 0.035 * build.height
    for side, sign in SIDES:
        anchors.update({
            SHOULDER[side]: ("torso", (sign * SHOULDER_SPACING * build.shoulder_half_width, shoulder_y, 0.0), 1.0),
            HIP[side]: ("pelvis", (sign * HIP_SPACING * build.hip_half_width, -0.02 * build.height, 0.0), 1.0),
            ELBOW[side]: (f"{side}_forearm", (0, 0, 0), 1.0), WRIST[side]: (f"{side}_hand", (0, 0, 0), 1.0),
            KNEE[side]: (f"{side}_shin", (0, 0, 0), 1.0), ANKLE[side]: (f"{side}_foot", (0, 0, 0), 1.0),
        })  # fmt: skip
    return anchors


def _joints_camera(build: Build, pose: Pose, yaw: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmark indices, the body's matching points (camera axes, metres) and their weights."""
    frames = bone_frames(build, pose)
    anchors = _anchors(build)
    indices = np.array(list(anchors))
    points = np.array([frames[bone].origin + frames[bone].rotation @ np.asarray(at, float) for bone, at, _ in anchors.values()])
    weights = np.array([weight for _, _, weight in anchors.values()])
    return indices, points @ Camera(yaw=yaw).rotation().T, weights


def _placement(marks: Landmarks, build: Build, pose: Pose, yaw: float) -> tuple[float, np.ndarray]:
    """Scale (pixels per metre) and offset that best carry the body's joints, seen from `yaw`, onto
    the landmarks: pixel = scale * (x, -y) + offset, weighted least squares."""
    indices, camera_points, weights = _joints_camera(build, pose, yaw)
    weights = weights * np.clip(marks.visibility[indices], 0.05, 1.0)
    count = len(indices)
    system = np.zeros((2 * count, 3))
    system[:count, 0], system[:count, 1] = camera_points[:, 0], 1.0
    system[count:, 0], system[count:, 2] = -camera_points[:, 1], 1.0
    target = np.concatenate([marks.pixels[indices, 0], marks.pixels[indices, 1]])
    root = np.sqrt(np.concatenate([weights, weights]))
    (scale, offset_x, offset_y), *_ = np.linalg.lstsq(system * root[:, None], target * root, rcond=None)
    if not scale > 0:
        raise NoPersonFound("No person was found in the photo: its landmarks do not make up a body.")
    return float(scale), np.array([offset_x, offset_y])


def _camera_for(build: Build, pose: Pose, yaw: float, size: tuple[int, int], scale: float, offset: np.ndarray) -> Camera:
    """The Camera whose projection at `size` is pixel = scale * (x, -y) + offset (camera axes)."""
    frames = bone_frames(build, pose)
    base = Projection(Camera(yaw=yaw), frames, body_solids(build), size)
    centre = np.array([offset[0] + scale * base.centre_xy[0], offset[1] - scale * base.centre_xy[1]])
    shift = (float(centre[0] / size[0] - 0.5), float(centre[1] / size[1] - 0.5))
    return Camera(yaw=yaw, zoom=float(scale / base.scale), shift=shift)


def _linear(projection: Projection) -> tuple[float, np.ndarray]:
    """A projection as pixel = scale * (x, -y) + offset (camera axes)."""
    scale = projection.scale
    offset = projection.pixel_centre + scale * np.array([-projection.centre_xy[0], projection.centre_xy[1]])
    return scale, offset


def _length(marks: Landmarks, start, end, scale: float, bias: float = 0.0) -> float | None:
    """Length in metres of the segment from landmark(s) `start` to `end`, MediaPipe's slant undone;
    None when it slants so much that its length cannot be told."""
    flat, slant = _slant(marks, start, end)
    in_plane = np.cos(np.radians(DEPTH_GAIN * (slant - bias)))
    return float(np.hypot(*flat)) / scale / in_plane if in_plane > 0.8 else None


def _proportions(marks: Landmarks, build: Build, scale: float) -> Build:
    """Shoulder and hip width and leg length from the landmarks (`scale` pixels per metre)."""
    ranges = {name: spec.metadata["range"] for name, spec in Build.__dataclass_fields__.items()}
    changes = {}
    shoulders = _length(marks, SHOULDER["right"], SHOULDER["left"], scale)
    if shoulders is not None:
        changes["shoulders"] = shoulders / SHOULDER_SPACING / (2 * 0.115 * build.height)
    hips = _length(marks, HIP["right"], HIP["left"], scale)
    if hips is not None:
        changes["hips"] = hips / HIP_SPACING / (2 * 0.052 * build.height)
    torso = _length(marks, [HIP["left"], HIP["right"]], [SHOULDER["left"], SHOULDER["right"]], scale, SLANT_BIAS["torso"])
    legs = [
        (_length(marks, HIP[side], KNEE[side], scale), _length(marks, KNEE[side], ANKLE[side], scale, SLANT_BIAS["shin"]))
        for side, _ in SIDES
    ]
    legs = [upper + lower for upper, lower in legs if upper is not None and lower is not None]
    if torso is not None and legs:
        changes["legs"] = max(legs) / torso / (0.49 / 0.285) / LEG_RATIO
    return replace(build, **{name: float(np.clip(value, *ranges[name])) for name, value in changes.items()})


# ------------------------------------------------------------------------------ thickness


def _half_widths(mask: np.ndarray, centre: np.ndarray, normal: np.ndarray, reach: float) -> tuple[float, float]:
    """How far the mask (True = person) runs from `centre` along +normal and -normal (pixels)."""
    steps = np.arange(0.0, reach, 0.5)
    height, width = mask.shape
    runs = []
    for sign in (1.0, -1.0):
        points = centre[None, :] + sign * steps[:, None] * normal[None, :]
        xs, ys = np.rint(points[:, 0]).astype(int), np.rint(points[:, 1]).astype(int)
        inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        values = np.zeros(len(steps), bool)
        values[inside] = mask[ys[inside], xs[inside]]
        outside = np.flatnonzero(~values)
        runs.append(float(steps[outside[0]]) if len(outside) else float(reach))
    return runs[0], runs[1]


def _width(mask: np.ndarray, start: np.ndarray, end: np.ndarray, at: float = 0.5, symmetric: bool = True) -> float | None:
    """Width of the mask across the segment start-end at fraction `at` of it; None where it is not in
    the mask or (`symmetric`) merges with another part on one side (the half widths differ too much)."""
    axis = end - start
    length = np.linalg.norm(axis)
    if length < 4:
        return None
    normal = np.array([-axis[1], axis[0]]) / length
    plus, minus = _half_widths(mask, start + at * axis, normal, reach=1.5 * length)
    if min(plus, minus) < 1 or (symmetric and max(plus, minus) > 1.6 * min(plus, minus)):
        return None
    return plus + minus


def _thickness(marks: Landmarks, build: Build, pose: Pose, camera: Camera) -> Build:
    """Limb thickness and girth from the person mask: widths across the forearms, upper arms and
    shins, and across the waist, in the photo against the same widths in a render of the body placed
    on it. Where a limb touches another part the width is not taken; at the waist (where hands may
    rest) the smallest of three ratios counts, and only in a view from the front or the back (from
    the side the arms cover the waist)."""
    figure = Figure(build, pose, camera, marks.size)
    surface = figure.surface()
    rendered, torso_only = surface.body, np.isin(surface.tag, (1, 2))
    person = marks.mask > 0.5
    frames = figure.frames
    to_pixels = figure.projection.to_pixels

    def joint(bone: str) -> np.ndarray:
        return to_pixels(frames[bone].origin[None])[0]

    limb_ratios = []
    for side, _ in SIDES:
        segments = (
            (SHOULDER[side], ELBOW[side], f"{side}_upper_arm", f"{side}_forearm"),
            (ELBOW[side], WRIST[side], f"{side}_forearm", f"{side}_hand"),
            (KNEE[side], ANKLE[side], f"{side}_shin", f"{side}_foot"),
        )
        for start, end, bone_start, bone_end in segments:
            if min(marks.visibility[start], marks.visibility[end]) < 0.5:
                continue
            photo_width = _width(person, marks.pixels[start], marks.pixels[end])
            body_width = _width(rendered, joint(bone_start), joint(bone_end))
            if photo_width and body_width:
                limb_ratios.append(photo_width / body_width / LIMB_SPREAD)
    changes = {}
    if len(limb_ratios) >= 2:
        changes["limbs"] = build.limbs * float(np.median(limb_ratios))
    hips = marks.pixels[[HIP["left"], HIP["right"]]].mean(0)
    shoulders = marks.pixels[[SHOULDER["left"], SHOULDER["right"]]].mean(0)
    body_hips = (joint("left_thigh") + joint("right_thigh")) / 2
    body_shoulders = (joint("left_upper_arm") + joint("right_upper_arm")) / 2
    waist_ratios = []
    for at in (0.25, 0.4, 0.55) if abs(np.cos(np.radians(camera.yaw))) > 0.9 else ():  # not from the side
        photo_waist = _width(person, hips, shoulders, at, symmetric=False)
        body_waist = _width(torso_only, body_hips, body_shoulders, at, symmetric=False)
        if photo_waist and body_waist:
            waist_ratios.append(photo_waist / body_waist)
    if waist_ratios:
        changes["girth"] = build.girth * min(waist_ratios)
    ranges = {name: spec.metadata["range"] for name, spec in Build.__dataclass_fields__.items()}
    return replace(build, **{name: float(np.clip(value, *ranges[name])) for name, value in changes.items()})
