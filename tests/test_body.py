"""The posable body and its DensePose renderer: exact, deterministic maps in the released format."""

import numpy as np
import pytest
from PIL import Image

from parts2whole.body import Build, Camera, Figure, Pose, render_pose
from parts2whole.body.presets import CONTROLS, PRESETS, control_values, from_controls
from parts2whole.body.render import render_surface
from parts2whole.densepose import densepose_problems

SIZE = (192, 288)
FRONT_PARTS = {2, 3, 4, 5, 6, 9, 10, 13, 14, 15, 16, 19, 20, 23, 24}
BACK_PARTS = {1, 3, 4, 5, 6, 7, 8, 11, 12, 17, 18, 21, 22, 23, 24}


def parts_seen(image: Image.Image, min_pixels: int = 8) -> set[int]:
    index = np.asarray(image)[..., 2]
    values, counts = np.unique(index[index > 0], return_counts=True)
    return {int(v) for v, c in zip(values, counts, strict=True) if c >= min_pixels}


def test_same_pose_same_bytes_and_released_format():
    first = render_pose(PRESETS["walking"].pose, camera=Camera(yaw=25), size=SIZE)
    second = render_pose(PRESETS["walking"].pose, camera=Camera(yaw=25), size=SIZE)
    assert first.mode == "RGB" and first.size == SIZE
    assert first.tobytes() == second.tobytes()
    iuv = np.asarray(first)
    background = (iuv == 0).all(-1)
    assert 0.5 < background.mean() < 0.95
    assert set(np.unique(iuv[..., 2][~background])) <= set(range(1, 25))
    assert densepose_problems(first) == []


def test_front_and_back_views_show_the_parts_densepose_names():
    assert parts_seen(render_pose(size=SIZE)) == FRONT_PARTS
    assert parts_seen(render_pose(camera=Camera(yaw=180), size=SIZE)) == BACK_PARTS


def test_left_and_right_as_densepose_names_them():
    """Front view: the person's right (DensePose 23 head, 16 upper arm front) is on the image's left."""
    index = np.asarray(render_pose(size=SIZE))[..., 2]
    columns = np.arange(SIZE[0])[None, :].repeat(SIZE[1], 0)
    assert columns[index == 23].mean() < columns[index == 24].mean()
    assert columns[index == 16].mean() < SIZE[0] / 2 < columns[index == 15].mean()
    assert columns[index == 6].mean() < columns[index == 5].mean()  # right foot, left foot


def test_uv_vary_smoothly_inside_parts():
    """Neighbouring pixels of one part differ little in U and V (no seams inside a split part)."""
    iuv = np.asarray(render_pose(size=(384, 576))).astype(int)
    index, u, v = iuv[..., 2], iuv[..., 1], iuv[..., 0]
    for part in (2, 9, 13, 16):
        same = (index[:, 1:] == part) & (index[:, :-1] == part)
        assert np.abs(u[:, 1:] - u[:, :-1])[same].max() <= 40
        assert np.abs(v[:, 1:] - v[:, :-1])[same].max() <= 8
        same_rows = (index[1:] == part) & (index[:-1] == part)
        assert np.abs(v[1:] - v[:-1])[same_rows].max() <= 8
        assert np.percentile(v[index == part], 95) - np.percentile(v[index == part], 5) > 150  # V spans the part


def test_v_runs_down_the_limbs_and_u_across():
    iuv = np.asarray(render_pose(size=(384, 576))).astype(int)
    rows, columns = np.mgrid[0 : iuv.shape[0], 0 : iuv.shape[1]]
    shin = iuv[..., 2] == 13  # right lower leg, front
    assert np.corrcoef(rows[shin], iuv[..., 0][shin])[0, 1] > 0.95
    assert abs(np.corrcoef(columns[shin], iuv[..., 1][shin])[0, 1]) > 0.9


def test_an_arm_across_the_torso_hides_it():
    figure = Figure(Build(), PRESETS["arms crossed"].pose, Camera(), SIZE)
    maps = figure.surface()
    torso_alone = render_surface([s for s in figure.body if s.bone == "torso"], figure.frames, figure.rest_frames, figure.projection)
    hidden = (torso_alone.tag == 2) & np.isin(maps.tag, [15, 16, 19, 20])
    assert hidden.sum() > 100
    assert (maps.depth[hidden] > torso_alone.depth[hidden]).all()  # the arm is nearer the camera


def test_far_leg_behind_near_leg_in_a_side_view():
    """From the person's left side the left leg is in front: where both legs project, the left one shows."""
    figure = Figure(Build(), Pose(left_hip_flex=20, right_hip_flex=-20), Camera(yaw=90), SIZE)
    maps = figure.surface()
    left = np.isin(maps.tag, [8, 10, 12, 14])
    right = np.isin(maps.tag, [7, 9, 11, 13])
    assert left.sum() > right.sum() > 0
    near_depth = maps.depth[left].mean()
    assert near_depth > maps.depth[right].mean()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_renders_a_valid_map(preset):
    image = render_pose(PRESETS[preset].pose, camera=Camera(yaw=PRESETS[preset].yaw), size=SIZE)
    assert densepose_problems(image) == []


@pytest.mark.parametrize("extreme", ["low", "high"])
def test_slider_extremes_render_valid_maps(extreme):
    values = [control.low if extreme == "low" else control.high for control in CONTROLS]
    pose, camera, build = from_controls("standing", values)
    assert densepose_problems(render_pose(pose, build, camera, SIZE)) == []


def test_controls_show_the_preset_they_start_from():
    for name, preset in PRESETS.items():
        pose, camera, _ = from_controls(name, control_values(name))
        assert pose == preset.pose.clamped() and camera.yaw == preset.yaw


def test_poses_are_clamped_to_human_ranges():
    pose = Pose(left_elbow=-90, right_knee=400).clamped()
    assert pose.left_elbow == Pose.ranges()["left_elbow"][0]
    assert pose.right_knee == Pose.ranges()["right_knee"][1]
