"""Bad input gets a sentence naming the problem; odd but valid images are read correctly."""

import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from parts2whole import preprocess
from parts2whole.labels import order_labels
from parts2whole.preprocess import FRAMES, image_from_array, load_image, prepare_pose, prepare_reference, to_mask, to_rgba
from parts2whole.testing.inputs import HEIGHT, WIDTH, call_kwargs, noise_image


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"appearance": {"hat": "x.png"}}, r"Unknown part label\(s\) 'hat'; the labels are: 'hair or headwear'"),
        ({"appearance": None, "mask": None}, "`appearance` must be a dict"),
        ({"mask": {"shoes": np.zeros((8, 8), np.uint8)}}, "A mask is given for 'shoes' but there is no 'shoes' image"),
        ({"height": 100}, "`height` must be a positive multiple of 8, got 100"),
        ({"width": 0}, "`width` must be a positive multiple of 8"),
        ({"structure": {}}, r"`structure` must hold the target pose as \{'densepose': image\}"),
        (
            {"structure": {"densepose": "p.png", "openpose": "o.png"}},
            r"Unsupported structure \['openpose'\]: the released model takes only 'densepose'\.$",
        ),
        ({"num_inference_steps": 0}, "`num_inference_steps` must be at least 1"),
        ({"num_inference_steps": float("nan")}, "`num_inference_steps` must be at least 1, got nan"),
        ({"guidance_scale": float("nan")}, r"`guidance_scale` must be a finite number \(e.g. 7.5; 1 turns guidance off\), got nan"),
        ({"guidance_scale": None}, "`guidance_scale` must be a finite number"),
        ({"num_images_per_prompt": 0}, "`num_images_per_prompt` must be at least 1"),
        ({"output_type": "jpeg"}, "`output_type` must be one of"),
        ({"generator": [torch.Generator()] * 2}, r"2 generators given for 1 images\.$"),
        ({"callback_on_step_end_tensor_inputs": ["latents", "noise"]}, r"Callbacks can take \['latents'\], not \['noise'\]\.$"),
    ],
)
def test_bad_call_arguments_are_named(pipe, overrides, message) -> None:
    with pytest.raises(ValueError, match="^" + message):  # each sentence from its start
        pipe(**call_kwargs(2, **overrides))


def test_unreadable_and_missing_image_paths(pipe, tmp_path) -> None:
    corrupt = tmp_path / "face.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"the 'face' image: '.*face.png' is not a readable image"):
        pipe(**call_kwargs(1, appearance={"face": corrupt}, mask=None))
    with pytest.raises(ValueError, match=r"the 'face' image: there is no file '.*missing.png'"):
        pipe(**call_kwargs(1, appearance={"face": tmp_path / "missing.png"}, mask=None))
    with pytest.raises(ValueError, match="the densepose image: there is no file"):
        pipe(**call_kwargs(1, structure={"densepose": str(tmp_path / "pose.png")}))


def test_empty_mask_is_refused(pipe) -> None:
    appearance = {"face": noise_image(0, (32, 32))}
    with pytest.raises(ValueError, match="The 'face' mask is empty"):
        pipe(**call_kwargs(1, appearance=appearance, mask={"face": np.zeros((32, 32), np.uint8)}))


def test_fully_transparent_reference_without_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="The 'face' mask is empty"):
        prepare_reference(Image.new("RGBA", (16, 16)), None, 16, 16, "face")


def test_tiny_image_is_refused() -> None:
    with pytest.raises(ValueError, match="the 'shoes' image: the image is 4x30"):
        prepare_reference(Image.new("RGB", (4, 30)), None, 16, 16, "shoes")


def test_wrong_types_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected a PIL image, a numpy array or a path, got int"):
        load_image(3, "the 'face' image")
    with pytest.raises(ValueError, match=r"must be HxW, HxWx3 or HxWx4, got shape \(2, 8, 8, 3\)"):
        load_image(np.zeros((2, 8, 8, 3), np.uint8), "the 'face' image")
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((8, 8), np.nan), "the 'face' image")


def test_labels_are_put_in_canonical_order() -> None:
    """Head to toe, whatever the given order; the pair is one whose alphabetical order differs."""
    assert order_labels(["upper body clothes", "hair or headwear"]) == ["hair or headwear", "upper body clothes"]
    given = ["shoes", "whole body clothes", "face", "lower body clothes"]
    assert order_labels(given) == ["face", "lower body clothes", "whole body clothes", "shoes"] != sorted(given)


def test_order_labels_still_refuses_no_parts() -> None:
    """The pipeline takes `appearance={}` (an evaluation's ablation); readers of user input do not."""
    with pytest.raises(ValueError, match="No parts given"):
        order_labels([])


def test_exif_orientation_is_applied(tmp_path) -> None:
    image = Image.new("RGB", (40, 20), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path, "x").size == (20, 40)


def test_image_modes_become_rgba(tmp_path) -> None:
    sixteen_bit = tmp_path / "deep.png"
    Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)).save(sixteen_bit)
    assert np.asarray(to_rgba(load_image(sixteen_bit, "x")))[0, 0].tolist() == [255, 255, 255, 255]

    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in CMYK
    assert np.asarray(to_rgba(cmyk))[0, 0].tolist() == [255, 0, 0, 255]

    grey = Image.new("L", (16, 16), 128)
    assert np.asarray(to_rgba(grey))[0, 0].tolist() == [128, 128, 128, 255]

    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.info["transparency"] = 0
    assert np.asarray(to_rgba(palette))[0, 0].tolist()[3] == 0

    assert np.asarray(load_image(np.full((16, 16), 1.0), "x"))[0, 0] == 255
    assert np.asarray(load_image(np.full((16, 16, 3), 257 * 10, np.uint16), "x"))[0, 0].tolist() == [10, 10, 10]
    assert np.asarray(load_image(np.ones((16, 16), bool), "x"))[0, 0] == 255


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16", [0, 257 * 200, 65535], [0, 200, 255]),  # / 257 (not / 255, which gives 202)
        ("I;16B", [0, 257 * 200, 65535], [0, 200, 255]),
        ("I;16L", [0, 257 * 200, 65535], [0, 200, 255]),
        ("I", [0, 257 * 200, 65535], [0, 200, 255]),  # 32-bit integers holding 16-bit values
        ("I", [0, 10, 200], [0, 10, 200]),  # 32-bit integers holding 8-bit values: as they are
        ("I", [0, 10, 255], [0, 10, 255]),  # 255 is still 8-bit
        ("I", [0, 128, 256], [0, 0, 1]),  # 256 is 16-bit: / 257
        ("I", [0, 1, 1], [0, 1, 1]),  # integers up to 1 are not a [0, 1] float scale
        ("F", [0.0, 0.75, 1.0], [0, 191, 255]),  # floats in [0, 1]: x 255 (not x 256, which gives 192)
        ("F", [0.0, 257 * 200.0, 65535.0], [0, 200, 255]),  # floats on a 16-bit scale
        ("F", [0.0, 1.5, 0.75], [0, 2, 1]),  # floats above 1: an 8-bit scale
        ("F", [-300.0, 0.0, 300.0], [0, 0, 1]),  # negative values clip to 0
    ],
)
def test_deep_greyscale_modes_are_scaled_to_8_bits(mode, values, expected) -> None:
    image = Image.new(mode, (3, 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    rgba = np.asarray(to_rgba(image))
    assert rgba[0, :, 0].tolist() == expected and (rgba[0, :, 0:1] == rgba[0, :, 1:3]).all() and (rgba[..., 3] == 255).all()


@pytest.mark.parametrize("mode", ["LA", "PA", "RGBA"])
def test_modes_with_alpha_keep_it(mode) -> None:
    image = Image.new("RGBA", (2, 1), (10, 10, 10, 255))
    image.putpixel((1, 0), (10, 10, 10, 0))
    converted = image.convert(mode)
    assert np.asarray(to_rgba(converted))[0, :, 3].tolist() == [255, 0]


def test_the_pose_is_resized_bilinearly_and_its_transparent_pixels_are_pure_background() -> None:
    """docs/method.md §4.5: bilinear, as the authors trained; transparency is black, exactly 0."""
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.paste((200, 100, 2, 255), (0, 0, 4, 8))
    pose = prepare_pose(rgba, 12, 16)
    opaque_on_black = Image.new("RGB", (8, 8))
    opaque_on_black.paste((200, 100, 2), (0, 0, 4, 8))
    expected = np.asarray(opaque_on_black.resize((12, 16), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(pose.permute(1, 2, 0).numpy(), expected)
    assert (pose[:, :, -3:] == 0).all()


def test_reference_is_put_on_white_and_alpha_is_the_mask() -> None:
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 8, 16))
    pixels, mask, clip_image = prepare_reference(rgba, None, 16, 16, "face")
    assert pixels[:, 8, 12].tolist() == [1.0, 1.0, 1.0]  # transparent -> white -> 1
    assert pixels[:, 8, 2].tolist() == [1.0, -1.0, -1.0]  # opaque red
    assert mask[0, 8, 2] == 1.0 and mask[0, 8, 12] == 0.0
    assert clip_image.mode == "RGB" and clip_image.getpixel((12, 8)) == (255, 255, 255)


def test_mask_with_transparency_counts_transparent_as_black() -> None:
    mask = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    mask.paste((255, 255, 255, 255), (0, 0, 4, 8))
    grey = np.asarray(to_mask(mask))
    assert grey[0, 0] == 255 and grey[0, 6] == 0


def test_pose_is_resized_and_in_unit_range() -> None:
    pose = prepare_pose(np.full((20, 10, 3), 255, np.uint8), WIDTH, HEIGHT)
    assert pose.shape == (3, HEIGHT, WIDTH) and pose.min() == 1.0


def png_bomb(path, side: int) -> None:
    """A PNG that declares a side x side greyscale image of zeros, written without ever holding it:
    a few kilobytes on disk, side^2 bytes once decoded."""
    row = bytes(side + 1)  # filter byte + pixels

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    compressed = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b""))


def peak_memory_of(code: str) -> tuple[int, str]:
    """(peak resident MB, output) of `code` run in a fresh interpreter after importing preprocess."""
    script = (
        "import resource, sys\nfrom parts2whole.preprocess import load_image\nbefore = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"try:\n    {code}\nexcept ValueError as error:\n    print(error)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip().splitlines()
    return int(output[-1]), "\n".join(output[:-1])


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path) -> None:
    bomb = tmp_path / "pose.png"
    png_bomb(bomb, 12000)
    assert bomb.stat().st_size < 200_000
    extra_mb, message = peak_memory_of(f"load_image({str(bomb)!r}, 'The pose')")
    print(f"\nbomb of 12000x12000 ({bomb.stat().st_size} bytes): {extra_mb} MB more at peak; {message}")
    assert message == (
        "The pose: the image is 12000x12000 (144 megapixels); images up to 40 megapixels are read. Reduce it and try again."
    )
    assert extra_mb < 50  # decoding it would take 144 MB as greyscale, 576 MB as RGBA


def test_a_huge_jpeg_is_read_at_a_reduced_scale(tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (9000, 6000), (200, 30, 40)).save(path, quality=50)
    image = load_image(path, "The face image")
    assert image.size == (4500, 3000) and image.getpixel((10, 10))[0] > 150



@pytest.mark.parametrize(
    ("limit", "size"),
    [(120_000, (400, 300)), (119_999, (200, 150)), (29_999, (100, 75)), (7_500, (100, 75)), (7_499, (50, 38)), (1_899, None)],
)
def test_a_jpeg_is_decoded_at_the_largest_scale_within_the_limit(tmp_path, monkeypatch, limit, size) -> None:
    """400x300 = 120,000 pixels: within a limit of 120,000 as it is, else at 1/2, 1/4, 1/8 (the
    decoder rounds up: 38 rows), refused when even 1/8 (1,900 pixels) is over."""
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", limit)
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (400, 300), (200, 30, 40)).save(path)
    if size is None:
        with pytest.raises(ValueError, match=r"^The face image: the image is 400x300 \(0 megapixels\); images up to 0 megapixels"):
            load_image(path, "The face image")
    else:
        assert load_image(path, "The face image").size == size


def test_only_a_jpeg_is_reduced_other_formats_over_the_limit_are_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 119_999)
    path = tmp_path / "photo.png"
    Image.new("RGB", (400, 300), (200, 30, 40)).save(path)
    with pytest.raises(ValueError, match=r"^The face image: the image is 400x300"):
        load_image(path, "The face image")

@pytest.mark.parametrize(
    ("array", "mode", "expected"),
    [
        (np.array([[0, 128, 255]], np.uint8), "L", [[0, 128, 255]]),
        (np.array([[[0], [128], [255]]], np.uint8), "L", [[0, 128, 255]]),  # (H, W, 1) is greyscale
        (np.array([[0, 257 * 100, 65535]], np.uint16), "L", [[0, 100, 255]]),  # 16-bit: / 257
        (np.array([[False, True]]), "L", [[0, 255]]),
        (np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], np.float32), "L", [[0, 0, 128, 255, 255]]),  # floats clipped to [0, 1]
        (np.array([[0.25]], np.float64), "L", [[64]]),
        (np.dstack([np.full((1, 2), v, np.uint8) for v in (10, 20, 30)]), "RGB", [[[10, 20, 30]] * 2]),
        (np.dstack([np.full((1, 2), v, np.uint8) for v in (10, 20, 30, 40)]), "RGBA", [[[10, 20, 30, 40]] * 2]),
    ],
)
def test_image_arrays_of_each_type_become_these_pixels(array, mode, expected) -> None:
    image = image_from_array(array, "the 'face' image")
    assert image.mode == mode
    np.testing.assert_array_equal(np.asarray(image), np.asarray(expected, np.uint8))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4, 2), np.uint8), r"must be HxW, HxWx3 or HxWx4, got shape \(4, 4, 2\)"),
        (np.zeros((4, 4, 5), np.uint8), r"must be HxW, HxWx3 or HxWx4, got shape \(4, 4, 5\)"),
        (np.zeros((1, 4, 4, 1), np.uint8), r"must be HxW, HxWx3 or HxWx4, got shape \(1, 4, 4, 1\)"),
        (np.zeros((4, 4), np.int32), "the 'face' image: unsupported image array type int32."),
        (np.zeros((4, 4), np.complex64), "the 'face' image: unsupported image array type complex64."),
    ],
)
def test_image_arrays_of_other_shapes_and_types_are_refused_with_a_sentence(array, message) -> None:
    with pytest.raises(ValueError, match=message):
        image_from_array(array, "the 'face' image")


@pytest.mark.parametrize(("name", "frames"), [("one.png", 1), ("one.jpg", 1), ("two.gif", 2), ("three.gif", 3)])
def test_the_frame_count_is_noted_only_for_files_of_several_frames(tmp_path, name, frames) -> None:
    path = tmp_path / name
    images = [Image.new("RGB", (8, 8), (60 * i, 0, 0)) for i in range(frames)]
    images[0].save(path, save_all=frames > 1, append_images=images[1:])
    image = load_image(path, "The pose")
    assert image.info.get(FRAMES) == (frames if frames > 1 else None)
    assert image.convert("RGB").getpixel((0, 0))[0] == 0  # the first frame


def test_an_image_beyond_pillows_own_safety_limit_is_refused_by_name(tmp_path) -> None:
    bomb = tmp_path / "huge.png"
    png_bomb(bomb, 20000)  # 400 megapixels: over twice Pillow's limit, so Pillow refuses it when opening
    with pytest.raises(ValueError, match=f"^The pose: {re.escape(repr(str(bomb)))} declares an image too large to open safely\\.$"):
        load_image(bomb, "The pose")


def test_an_array_of_the_wrong_shape_is_named() -> None:
    with pytest.raises(ValueError, match=r"^The face image: an image array must be HxW, HxWx3 or HxWx4, got shape \(4, 4, 2\)\.$"):
        load_image(np.zeros((4, 4, 2), np.uint8), "The face image")
