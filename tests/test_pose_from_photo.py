"""Pose from a photo: MediaPipe's landmarks, and the body of parts2whole.body fitted to them.

The photos are drawn here: a figure with a face, a torso and thick limbs on a plain background,
and shaded renders of the body itself in a known pose (whose exact DensePose map is known).
"""

import sys
import threading
import types

import gradio as gr
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

pytest.importorskip("mediapipe")

from parts2whole.body import Build, Camera, Figure, Pose, from_photo
from parts2whole.body.presets import PRESETS
from parts2whole.densepose import densepose_problems
from ui.handlers import Handlers

BACKGROUND = (215, 215, 215)
SKIN, SHIRT, TROUSERS, SHOES = (224, 172, 138), (40, 90, 170), (50, 50, 60), (30, 30, 30)


def drawn_person(raised: str = "left") -> Image.Image:
    """A person seen from the front, 512x768: legs apart, one arm hanging out a little, the other
    raised up and out. The person's left is the image's right, so "left" raises the image-right arm."""
    image = Image.new("RGB", (512, 768), BACKGROUND)
    draw = ImageDraw.Draw(image)

    def limb(start, end, width, colour):
        draw.line([start, end], fill=colour, width=width)
        for x, y in (start, end):
            draw.ellipse([x - width // 2, y - width // 2, x + width // 2, y + width // 2], fill=colour)

    cx = 256
    for sign in (-1, 1):  # legs and shoes
        limb((cx + sign * 35, 440), (cx + sign * 75, 590), 44, TROUSERS)
        limb((cx + sign * 75, 590), (cx + sign * 95, 720), 38, TROUSERS)
        draw.ellipse([cx + sign * 100 - 25, 705, cx + sign * 100 + 25, 735], fill=SHOES)
    limb((cx - 70, 215), (cx - 115, 325), 34, SHIRT)  # the image-left arm hangs
    limb((cx - 115, 325), (cx - 135, 425), 28, SKIN)
    draw.ellipse([cx - 152, 415, cx - 118, 450], fill=SKIN)
    limb((cx + 70, 215), (cx + 160, 150), 34, SHIRT)  # the image-right arm is raised
    limb((cx + 160, 150), (cx + 200, 60), 28, SKIN)
    draw.ellipse([cx + 188, 25, cx + 222, 60], fill=SKIN)
    draw.rounded_rectangle([cx - 75, 195, cx + 75, 455], radius=25, fill=SHIRT)
    draw.rectangle([cx - 16, 160, cx + 16, 200], fill=SKIN)  # neck, head, hair, ears, face
    draw.ellipse([cx - 48, 70, cx + 48, 185], fill=SKIN)
    draw.chord([cx - 50, 62, cx + 50, 140], 180, 360, fill=(60, 40, 25))
    draw.ellipse([cx - 54, 110, cx - 44, 135], fill=SKIN)
    draw.ellipse([cx + 44, 110, cx + 54, 135], fill=SKIN)
    for ex in (cx - 20, cx + 20):
        draw.ellipse([ex - 9, 112, ex + 9, 124], fill=(255, 255, 255))
        draw.ellipse([ex - 4, 114, ex + 4, 122], fill=(30, 20, 10))
    draw.polygon([(cx, 125), (cx - 6, 145), (cx + 6, 145)], fill=(200, 140, 110))
    draw.arc([cx - 18, 145, cx + 18, 165], 20, 160, fill=(150, 50, 50), width=3)
    return image if raised == "left" else ImageOps.mirror(image)


def person_pixels(image: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(image.convert("RGB"), dtype=np.int16) - np.array(BACKGROUND)).sum(-1) > 30


def body_pixels(iuv: Image.Image) -> np.ndarray:
    return np.asarray(iuv)[..., 2] > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def rendered_person(pose: Pose, yaw: float, build: Build | None = None, size=(512, 768)) -> tuple[Image.Image, np.ndarray]:
    """A shaded render of the body in `pose` seen from `yaw`, with eyes, nose and mouth when it
    faces the camera, and its exact DensePose part index map."""
    figure = Figure(build or Build(), pose, Camera(yaw=yaw), size)
    surface = figure.surface()
    colours = np.array([BACKGROUND, SHIRT, SHIRT, SKIN, SKIN, SHOES, SHOES] + [TROUSERS] * 8 + [SHIRT] * 4 + [SKIN] * 6)
    light = np.array([0.3, 0.4, 0.85]) / np.linalg.norm([0.3, 0.4, 0.85])
    shade = 0.3 + 0.7 * np.clip(surface.normal @ light, 0, 1)
    body = surface.body
    rgb = np.empty((size[1], size[0], 3), np.float32)
    rgb[:] = BACKGROUND
    rgb[body] = colours[surface.tag[body]] * shade[body][:, None]
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    head, unit, projection = figure.frames["head"], figure.build.unit, figure.projection
    if (projection.rotation @ head.rotation[:, 2])[2] > 0.1:  # the face is towards the camera
        draw = ImageDraw.Draw(image)
        centre = figure.build.neck + 0.45 * 0.235 * unit
        at = lambda x, y, z: projection.to_pixels((head.origin + head.rotation @ (np.array([x, y, z]) * unit))[None])[0]
        r = 0.011 * unit * projection.scale
        for x in (-0.032, 0.032):
            ex, ey = at(x, centre / unit + 0.02, 0.095)
            draw.ellipse([ex - 1.6 * r, ey - r, ex + 1.6 * r, ey + r], fill=(255, 255, 255))
            draw.ellipse([ex - 0.7 * r, ey - 0.7 * r, ex + 0.7 * r, ey + 0.7 * r], fill=(40, 25, 15))
        nx, ny = at(0, centre / unit - 0.015, 0.11)
        draw.ellipse([nx - 0.7 * r, ny - 0.7 * r, nx + 0.7 * r, ny + 0.7 * r], fill=(190, 130, 100))
        mx, my = at(0, centre / unit - 0.05, 0.09)
        draw.line([mx - 2 * r, my, mx + 2 * r, my], fill=(150, 50, 50), width=3)
    return image, np.where(body, surface.tag, 0)


@pytest.fixture(scope="module")
def fitted_left() -> tuple[Image.Image, from_photo.PhotoPose]:
    photo = drawn_person("left")
    return photo, from_photo.pose_from_photo(photo)


def test_the_drawn_person_is_found_with_every_landmark(fitted_left) -> None:
    photo, _ = fitted_left
    marks = from_photo.detect(photo)
    assert marks.pixels.shape == (33, 2) and marks.world.shape == (33, 3)
    assert (marks.visibility > 0.5).sum() >= 30
    nose, left_shoulder, right_shoulder = marks.pixels[[from_photo.NOSE, 11, 12]]
    assert 200 < nose[0] < 310 and 90 < nose[1] < 180  # on the drawn face
    assert left_shoulder[0] > right_shoulder[0]  # from the front the person's left is the image's right
    assert marks.mask.shape == (768, 512) and iou(marks.mask > 0.5, person_pixels(photo)) > 0.7


def test_the_fitted_map_is_densepose_and_covers_the_drawn_person(fitted_left) -> None:
    photo, fitted = fitted_left
    iuv = fitted.densepose()
    assert iuv.size == photo.size and iuv.mode == "RGB"
    assert densepose_problems(iuv) == []
    assert abs(fitted.camera.yaw) < 25  # seen from the front
    assert iou(body_pixels(iuv), person_pixels(photo)) > 0.6  # 0.73 measured


@pytest.mark.parametrize("raised", ["left", "right"])
def test_the_raised_arm_is_the_one_abducted(raised, fitted_left) -> None:
    fitted = fitted_left[1] if raised == "left" else from_photo.pose_from_photo(drawn_person(raised))
    other = "right" if raised == "left" else "left"
    up, down = getattr(fitted.pose, f"{raised}_shoulder_abduct"), getattr(fitted.pose, f"{other}_shoulder_abduct")
    assert up > 90 and down < 45, (up, down)  # 118 and 23 measured
    assert up > down + 60


def test_a_map_of_another_size_lines_up_with_the_photo_padded_to_it(fitted_left) -> None:
    photo, _ = fitted_left
    size = (600, 600)
    iuv = from_photo.densepose_from_photo(photo, size)
    assert iuv.size == size and densepose_problems(iuv) == []
    padded = ImageOps.pad(photo, size, color=BACKGROUND)
    assert iou(body_pixels(iuv), person_pixels(padded)) > 0.6


def test_the_person_frame_centres_the_body_and_fills_the_height(fitted_left) -> None:
    photo, _ = fitted_left
    shifted = Image.new("RGB", (900, 800), BACKGROUND)
    shifted.paste(photo.resize((384, 576)), (40, 200))  # small, off to the bottom left
    fitted = from_photo.pose_from_photo(shifted, (512, 768), frame="person")
    assert fitted.camera.zoom == 1 and fitted.camera.shift == (0.0, 0.0)
    rows, columns = np.nonzero(body_pixels(fitted.densepose()))
    assert abs((columns.min() + columns.max()) / 2 - 256) < 30
    assert rows.min() < 0.15 * 768 and rows.max() > 0.85 * 768
    assert (fitted.landmarks[:, 1] > 0).all() and (fitted.landmarks[:, 1] < 768).all()  # carried along


@pytest.mark.parametrize(("preset", "yaw"), [("waving", 10.0), ("side view", 90.0)])
def test_a_render_of_the_body_is_fitted_back_to_its_own_densepose(preset, yaw) -> None:
    """Round trip: the body rendered in a known pose, fitted from the render: the same view, and
    most pixels carry the same DensePose part."""
    image, truth = rendered_person(PRESETS[preset].pose, yaw)
    fitted = from_photo.pose_from_photo(image)
    parts = np.asarray(fitted.densepose())[..., 2]
    assert abs((fitted.camera.yaw - yaw + 180) % 360 - 180) < 20, fitted.camera.yaw
    assert iou(parts > 0, truth > 0) > 0.7  # 0.83 and 0.81 measured
    assert ((parts == truth) & (truth > 0)).sum() / (truth > 0).sum() > 0.6  # 0.84 and 0.69 measured


def test_a_heavier_body_is_fitted_heavier() -> None:
    """Limb thickness and girth follow the person mask's widths."""
    pose = PRESETS["arms out"].pose
    slim = from_photo.pose_from_photo(rendered_person(pose, 0.0, Build(limbs=0.85, girth=0.9))[0]).build
    heavy = from_photo.pose_from_photo(rendered_person(pose, 0.0, Build(limbs=1.25, girth=1.35))[0]).build
    assert heavy.girth > slim.girth + 0.15, (slim, heavy)
    assert heavy.limbs > slim.limbs + 0.15, (slim, heavy)


def test_no_person_is_a_value_error_that_says_so() -> None:
    with pytest.raises(ValueError, match="No person was found in the photo"):
        from_photo.pose_from_photo(Image.new("RGB", (512, 768), BACKGROUND))
    with pytest.raises(from_photo.NoPersonFound):
        from_photo.detect(Image.new("RGB", (64, 64), (255, 255, 255)))


def test_without_mediapipe_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(from_photo, "_detector", None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ImportError, match=r"pip install --no-deps -r requirements-pose\.txt"):
        from_photo.pose_from_photo(drawn_person())


def test_a_mediapipe_that_cannot_start_its_model_names_the_protobuf_it_needs(monkeypatch) -> None:
    """protobuf 5+ breaks mediapipe 0.10.21's Pose(); any failure to start becomes an ImportError."""

    def broken(**_):
        raise AttributeError("'FieldDescriptor' object has no attribute 'label'")

    fake = types.SimpleNamespace(solutions=types.SimpleNamespace(pose=types.SimpleNamespace(Pose=broken)))
    monkeypatch.setattr(from_photo, "_detector", None)
    monkeypatch.setitem(sys.modules, "mediapipe", fake)
    with pytest.raises(ImportError, match=r"could not start its pose model.*protobuf>=4\.25\.3,<5"):
        from_photo.detect(drawn_person())


def test_one_model_is_loaded_and_shared_between_threads(fitted_left) -> None:
    photo, _ = fitted_left
    from_photo.detect(photo)
    detector = from_photo._detector
    alone = from_photo.detect(photo).pixels
    results = [None] * 4

    def run(index: int) -> None:
        results[index] = from_photo.detect(photo if index % 2 == 0 else ImageOps.mirror(photo)).pixels

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert from_photo._detector is detector
    for index, pixels in enumerate(results):
        expected = alone if index % 2 == 0 else from_photo.detect(ImageOps.mirror(photo)).pixels
        np.testing.assert_allclose(pixels, expected, atol=1e-3)


def test_the_demo_handler_gives_a_map_of_the_generation_size(capsys) -> None:
    iuv, preview = Handlers.pose_from_photo(drawn_person(), 640, 448)
    assert iuv.size == (448, 640) and preview.size == (448, 640)
    assert densepose_problems(iuv) == []
    assert "approximation of DensePose" in capsys.readouterr().out  # gr.Info outside a request prints
    with pytest.warns(UserWarning, match="No person was found in the photo"):
        unchanged = Handlers.pose_from_photo(Image.new("RGB", (300, 400), BACKGROUND), 640, 448)
    assert unchanged == (gr.skip(), gr.skip())


def test_the_demo_handler_says_how_to_install_mediapipe_when_it_is_missing(monkeypatch) -> None:
    monkeypatch.setattr(from_photo, "_detector", None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.warns(UserWarning, match=r"needs MediaPipe.*pip install --no-deps -r requirements-pose\.txt"):
        assert Handlers.pose_from_photo(drawn_person(), 768, 512) == (gr.skip(), gr.skip())
