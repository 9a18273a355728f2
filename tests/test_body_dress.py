"""Dressed people: one seed, one person and one photo; parsing maps that label what the photo shows;
DensePose maps of the body alone."""

from dataclasses import replace

import numpy as np
import pytest

from parts2whole.body import Build, Camera, Figure, Pose, render_pose
from parts2whole.body.appearance import Colour, Fabric, Scene
from parts2whole.body.dress import Person, describe, render_person, sample_person
from parts2whole.labels import PART_LABELS

SIZE = (96, 144)
WHOLE, UPPER, LOWER = (PART_LABELS.index(label) + 1 for label in ("whole body clothes", "upper body clothes", "lower body clothes"))
HAIR, FACE, SHOES = (PART_LABELS.index(label) + 1 for label in ("hair or headwear", "face", "shoes"))


def person_where(condition, start: int = 0) -> Person:
    """The first sampled person (seeds from `start`) for whom `condition` holds."""
    return next(p for p in (sample_person(np.random.default_rng(seed)) for seed in range(start, start + 500)) if condition(p))


def render(person: Person, yaw: float = 0.0, pose: Pose | None = None):
    return render_person(person, pose or Pose(left_shoulder_abduct=30), Camera(yaw=yaw), SIZE, Scene())


def test_same_seed_same_person_and_bytes_other_seed_other_person():
    first, second = (sample_person(np.random.default_rng(7)) for _ in range(2))
    assert first == second
    photo_a, iuv_a, parsing_a = render(first)
    photo_b, iuv_b, parsing_b = render(second)
    assert photo_a.tobytes() == photo_b.tobytes() and iuv_a.tobytes() == iuv_b.tobytes()
    assert np.array_equal(parsing_a, parsing_b)
    other = sample_person(np.random.default_rng(8))
    assert other != first
    assert render(other)[0].tobytes() != photo_a.tobytes()


def test_outputs_share_size_and_the_iuv_map_is_the_body_alone():
    person = person_where(lambda p: p.outfit.bottom.kind == "skirt" and p.hair is not None and p.hair.length == "long")
    pose = Pose(right_elbow=40)
    photo, iuv, parsing = render(person, pose=pose)
    assert photo.mode == "RGB" and iuv.mode == "RGB"
    assert photo.size == iuv.size == SIZE and parsing.shape == (SIZE[1], SIZE[0]) and parsing.dtype == np.uint8
    assert iuv.tobytes() == render_pose(pose, person.build, Camera(), SIZE).tobytes()  # no skirt, no hair in it
    body = np.asarray(iuv).any(-1)
    assert (parsing[body] > 0).all()
    assert parsing.max() <= 7
    assert (parsing > 0).sum() > body.sum()  # the skirt and the hair widen the person


def test_garment_labels_follow_the_outfit():
    one_piece = person_where(lambda p: p.outfit.one_piece is not None)
    two_piece = person_where(lambda p: p.outfit.one_piece is None)
    labels = set(np.unique(render(one_piece)[2]))
    assert WHOLE in labels and not labels & {UPPER, LOWER}
    assert "whole body clothes" in one_piece.labels and "upper body clothes" not in one_piece.labels
    labels = set(np.unique(render(two_piece)[2]))
    assert {UPPER, LOWER} <= labels and WHOLE not in labels


def test_hair_face_and_shoes_labels():
    bald = person_where(lambda p: p.hair is None and p.headwear is None)
    barefoot = person_where(lambda p: p.outfit.shoes is None)
    assert HAIR not in np.unique(render(bald)[2]) and "hair or headwear" not in bald.labels
    assert SHOES not in np.unique(render(barefoot)[2]) and "shoes" not in barefoot.labels
    haired = person_where(lambda p: p.hair is not None and p.hair.length == "medium" and p.headwear is None)
    front, back = render(haired)[2], render(haired, yaw=180)[2]
    assert (front == FACE).sum() > (front == HAIR).sum() * 0.3
    assert (back == HAIR).sum() > 3 * (back == FACE).sum()


def test_skin_tones_span_light_to_dark():
    luminance = [np.mean(sample_person(np.random.default_rng(seed)).skin) for seed in range(200)]
    assert min(luminance) < 0.3 and max(luminance) > 0.8


def test_a_print_sits_on_the_chest_front_only():
    person = person_where(lambda p: p.outfit.one_piece is None)
    plain = Fabric("solid", Colour("white", (0.95, 0.95, 0.95)), Colour("red", (0.8, 0.1, 0.1)))
    printed = replace(plain, pattern="print", shape="circle")

    def photo(fabric: Fabric, yaw: float) -> np.ndarray:
        top = replace(person.outfit.top, fabric=fabric)
        return np.asarray(render(replace(person, outfit=replace(person.outfit, top=top)), yaw)[0])

    assert [(photo(plain, yaw) != photo(printed, yaw)).any() for yaw in (0, 180)] == [True, False]


def test_crop_is_the_render_at_any_resolution():
    figure = Figure(Build(), Pose(), Camera(yaw=20), (64, 96))
    tags = figure.surface().tag
    assert np.array_equal(figure.crop((10, 20, 30, 40), (20, 20)).surface().tag, tags[20:40, 10:30])
    fine = figure.crop((0, 0, 64, 96), (128, 192)).surface().tag
    assert (fine[::2, ::2] == tags).mean() > 0.95  # 2x2 blocks of the fine render cover the pixels


@pytest.mark.parametrize("seed", range(6))
def test_caption_names_the_garments(seed):
    person = sample_person(np.random.default_rng(seed))
    caption = describe(person)
    outfit = person.outfit
    assert caption.startswith(("a person with", "a bald person"))
    assert (outfit.one_piece or outfit.bottom.kind) in caption
    if outfit.shoes is not None:
        assert outfit.shoes.kind in caption and outfit.shoes.colour.name in caption
