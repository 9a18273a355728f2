"""DensePose checks, SegFormer part masks and Real-ESRGAN upscaling, on tiny saved weights."""

import colorsys
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional
from PIL import Image

from parts2whole.densepose import densepose_preview, densepose_problems, part_palette
from parts2whole.labels import PART_LABELS
from parts2whole.part_masks import PART_CLASSES, PartMasker, mask_of
from parts2whole.testing.inputs import noise_image, rectangle_mask
from parts2whole.testing.tiny_models import write_tiny_realesrgan, write_tiny_segformer
from parts2whole.upscale import Upscaler, import_realesrgan, network_weights
from ui.examples import load_poses


def test_drawn_poses_and_their_jpegs_are_densepose_maps() -> None:
    for path in load_poses():
        pose = Image.open(path)
        assert densepose_problems(pose) == [], path
        saved = io.BytesIO()
        pose.save(saved, format="JPEG", quality=75)
        assert densepose_problems(Image.open(saved)) == [], f"{path} as JPEG"


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (noise_image(0, (64, 64)), "black background"),
        (Image.new("RGB", (64, 64)), "it shows no body"),
        (Image.new("RGB", (64, 64), (120, 200, 180)), "black background"),
    ],
)
def test_other_images_are_not(image, problem) -> None:
    assert any(problem in line for line in densepose_problems(image))


def test_out_of_range_part_indices_are_named() -> None:
    array = np.zeros((64, 64, 3), np.uint8)
    array[16:48, 16:48] = (100, 100, 200)
    assert any("above 24" in line for line in densepose_problems(Image.fromarray(array)))


def test_preview_colours_each_part_and_keeps_background_black() -> None:
    array = np.zeros((8, 8, 3), np.uint8)
    array[:, 4:] = (255, 128, 2)
    preview = np.asarray(densepose_preview(Image.fromarray(array)))
    assert not preview[:, :4].any() and (preview[:, 4:] == part_palette()[2]).all()
    assert len({tuple(colour) for colour in part_palette()}) == 25


def test_the_palette_gives_neighbouring_parts_distant_hues_of_one_brightness() -> None:
    palette = part_palette()
    assert palette.shape == (25, 3) and palette.dtype == np.uint8 and not palette[0].any()
    hsv = [colorsys.rgb_to_hsv(*(colour / 255.0)) for colour in palette[1:]]
    for index, (hue, saturation, value) in enumerate(hsv):
        assert hue == pytest.approx(index * 7 % 24 / 24, abs=1 / 255)
        assert saturation == pytest.approx(200 / 255, abs=1 / 255) and value == pytest.approx(235 / 255, abs=1 / 255)
    for (hue, _, _), (next_hue, _, _) in zip(hsv[:-1], hsv[1:], strict=True):
        assert min(abs(hue - next_hue), 1 - abs(hue - next_hue)) > 0.25
    # pinned: the colours people learn to read (torso front, right hand, right head)
    assert palette[[2, 3, 23]].tolist() == [[98, 235, 51], [51, 146, 235], [51, 235, 142]]


def test_the_preview_shades_by_v_clips_the_index_and_reads_near_black_as_background() -> None:
    pixels = {  # (V, U, index) -> the palette entry and shade expected
        (0, 90, 2): (2, 0.55), (255, 90, 2): (2, 1.0), (128, 0, 30): (24, 0.55 + 0.45 * 128 / 255),
        (12, 12, 12): (0, 0.0), (0, 0, 13): (13, 0.55), (200, 50, 0): (0, 0.0),  # a body pixel of index 0 shows black
    }  # fmt: skip
    array = np.array([list(pixels)], np.uint8)
    as_rgba = Image.fromarray(np.concatenate([array, np.full((1, len(pixels), 1), 255, np.uint8)], axis=-1))
    for pose in (Image.fromarray(array), as_rgba):
        preview = np.asarray(densepose_preview(pose))[0]
        for got, (index, shade) in zip(preview, pixels.values(), strict=True):
            expected = np.clip(part_palette()[index].astype(np.float32) * shade, 0, 255).astype(np.uint8)
            np.testing.assert_array_equal(got, expected)


def test_part_classes_follow_the_parser_labels() -> None:
    assert set(PART_CLASSES) == set(PART_LABELS)
    class_map = np.array([[11, 1, 2, 4], [5, 6, 7, 9], [10, 0, 3, 8]])
    assert np.asarray(mask_of(class_map, "face")).tolist() == [[255, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert (np.asarray(mask_of(class_map, "whole body clothes")) > 0).sum() == 4
    assert (np.asarray(mask_of(class_map, "shoes")) > 0).sum() == 2


def test_part_masker_runs_the_saved_parser(tmp_path) -> None:
    write_tiny_segformer(tmp_path / "segformer")
    masker = PartMasker(tmp_path / "segformer")
    image = noise_image(1, (50, 70))
    classes = masker.classes(image)
    assert classes.shape == (70, 50) and classes.max() < 18
    mask = masker(image, "upper body clothes")
    assert mask.mode == "L" and mask.size == (50, 70)
    assert np.array_equal(np.asarray(mask) > 0, classes == 4)


def test_upscaler_reads_the_network_size_from_the_weights(tmp_path) -> None:
    write_tiny_realesrgan(tmp_path / "RealESRGAN_x4plus.pth")
    upscaler = Upscaler(tmp_path / "RealESRGAN_x4plus.pth", tile=16)
    assert len(upscaler.upsampler.model.body) == 1 and upscaler.upsampler.half is False
    write_tiny_realesrgan(tmp_path / "two_blocks.pth", num_block=2)
    assert len(Upscaler(tmp_path / "two_blocks.pth").upsampler.model.body) == 2
    assert upscaler(noise_image(2, (20, 12))).size == (80, 48)
    rgba = upscaler(noise_image(3, (40, 36)).convert("RGBA"))  # larger than a tile: tiled
    assert rgba.size == (160, 144) and rgba.mode == "RGBA"
    assert rgba.getchannel("A").getextrema() == (255, 255)  # an opaque reference stays opaque: its mask is whole
    cut_out = noise_image(4, (20, 20)).convert("RGBA")
    cut_out.putalpha(rectangle_mask((20, 20), (0.0, 0.0, 0.5, 1.0)))
    alpha = np.asarray(upscaler(cut_out).getchannel("A"))
    assert alpha[:, :36].min() == 255 and alpha[:, 44:].max() == 0  # the mask keeps its place


class Payload:
    """An object in a checkpoint: a pickle that could run code if loaded without `weights_only`."""


def test_the_upscaler_reads_either_layout_and_refuses_what_is_not_a_checkpoint(tmp_path) -> None:
    write_tiny_realesrgan(tmp_path / "ema.pth")
    params = torch.load(tmp_path / "ema.pth", weights_only=True)["params_ema"]
    torch.save({"params": params}, tmp_path / "plain.pth")
    for name in ("ema.pth", "plain.pth"):
        read = network_weights(tmp_path / name)
        assert read.keys() == params.keys() and all(torch.equal(read[key], params[key]) for key in params)

    (tmp_path / "page.pth").write_text("<html>Not found</html>")
    (tmp_path / "half.pth").write_bytes((tmp_path / "ema.pth").read_bytes()[:2000])
    torch.save({"params_ema": params, "payload": Payload()}, tmp_path / "code.pth")
    torch.save({"weights": params}, tmp_path / "other.pth")
    for name in ("page.pth", "half.pth", "code.pth"):  # the reason in brackets is the unpickler's error, whichever it meets
        with pytest.raises(Exception) as unpickling:
            torch.load(tmp_path / name, weights_only=True)
        reason = type(unpickling.value).__name__
        said = f"{tmp_path / name} is not a readable Real-ESRGAN checkpoint ({reason})."
        with pytest.raises(ValueError, match=f"^{re.escape(said)}$"):
            Upscaler(tmp_path / name)
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    for name in ("other.pth", "tensor.pth"):
        with pytest.raises(ValueError, match="is not a Real-ESRGAN checkpoint: it holds no 'params_ema' or 'params' network.$"):
            Upscaler(tmp_path / name)
    assert Upscaler(tmp_path / "ema.pth").upsampler.tile_size == 256  # the default tile bounds the memory of large images


def write_colour_keeping_realesrgan(path: Path) -> None:
    """An RRDBNet x4 that keeps colours: every convolution passes the 3 colour channels straight on
    (the RRDB trunk adds zero), except `conv_hr`, a 3 x 3 box blur of each channel, so the output
    is a blurred nearest-neighbour x4 of the input and a tile cut without enough padding shows."""
    _, RRDBNet = import_realesrgan()
    network = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=32, scale=4)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        for conv in (network.conv_first, network.conv_up1, network.conv_up2, network.conv_last):
            for channel in range(3):
                conv.weight[channel, channel, 1, 1] = 1.0
        for channel in range(3):
            network.conv_hr.weight[channel, channel] = 1.0 / 9.0
    torch.save({"params_ema": network.state_dict()}, path)


def test_upscaler_keeps_colours_and_alpha_in_place_and_tiles_without_seams(tmp_path) -> None:
    """A coloured RGBA reference (red, green, blue and yellow quadrants; the right half transparent)
    through a colour-keeping network: each quadrant keeps its colour (RGB, not BGR), the alpha
    stays on the left, and 16-pixel tiles give what one pass gives."""
    write_colour_keeping_realesrgan(tmp_path / "keep.pth")
    colours = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 0]]], dtype=np.uint8)
    rgb = colours.repeat(20, axis=0).repeat(24, axis=1)  # 40 x 48: quadrants of 20 x 24
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(rectangle_mask(rgba.size, (0.0, 0.0, 0.5, 1.0)))
    tiling = Upscaler(tmp_path / "keep.pth", tile=16)
    inputs = []
    tiling.upsampler.model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].shape[-2:]))
    tiled = tiling(rgba)
    assert len(inputs) == 9 and max(max(shape) for shape in inputs) <= 16 + 2 * 10  # 3 x 3 tiles, each with its padding
    whole = Upscaler(tmp_path / "keep.pth", tile=0)(rgba)
    assert tiled.size == whole.size == (192, 160) and tiled.mode == "RGBA"
    pixels = np.asarray(tiled)
    for row in range(2):
        for column in range(2):
            centre = pixels[80 * row + 40, 96 * column + 48]
            np.testing.assert_allclose(centre[:3], colours[row, column], atol=1)
    assert pixels[:, :92, 3].min() == 255 and pixels[:, 100:, 3].max() == 0
    assert np.abs(pixels.astype(int) - np.asarray(whole).astype(int)).max() <= 1


def test_only_the_colours_go_through_the_network_in_bgr(tmp_path) -> None:
    """Real-ESRGAN gets 3 channels in BGR order (cv2's) and the x4 scale; the alpha channel is a mask,
    resized plainly, never run through the network (which would treat it as a colour channel)."""
    write_colour_keeping_realesrgan(tmp_path / "keep.pth")
    upscaler = Upscaler(tmp_path / "keep.pth", tile=0)
    seen = []
    enhance = upscaler.upsampler.enhance
    upscaler.upsampler.enhance = lambda image, **kwargs: seen.append((image.copy(), kwargs)) or enhance(image, **kwargs)
    rgba = Image.new("RGBA", (12, 8), (200, 100, 10, 128))
    upscaler(rgba)
    (image, kwargs), = seen
    assert image.shape == (8, 12, 3) and tuple(image[0, 0]) == (10, 100, 200) and kwargs == {"outscale": 4}


def test_the_alias_is_registered_when_torchvision_lacks_the_module(monkeypatch) -> None:
    """In this process too: with the name gone from sys.modules (as in a fresh interpreter), the
    alias is registered with the function basicsr needs."""
    name = "torchvision.transforms.functional_tensor"
    monkeypatch.delitem(sys.modules, name, raising=False)
    assert importlib.util.find_spec(name) is None  # current torchvision: hence the alias
    import_realesrgan()
    alias = sys.modules[name]
    assert alias.__name__ == name and alias.rgb_to_grayscale is torchvision.transforms.functional.rgb_to_grayscale


def test_basicsr_imports_in_a_fresh_interpreter_through_the_alias() -> None:
    """Current torchvision has no `transforms.functional_tensor`, which basicsr imports: in a fresh
    process (nothing imported yet) `import_realesrgan` registers it as an alias of the function
    basicsr needs, and the import succeeds."""
    code = (
        "import importlib.util, sys, torchvision.transforms.functional as F\n"
        "name = 'torchvision.transforms.functional_tensor'\n"
        "missing = importlib.util.find_spec(name) is None\n"
        "from parts2whole.upscale import import_realesrgan\n"
        "import_realesrgan()\n"
        "alias = sys.modules[name]\n"
        "assert not missing or (alias.rgb_to_grayscale is F.rgb_to_grayscale and alias.__name__ == name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
    upsampler_class, network_class = import_realesrgan()  # and here, where it is imported already
    assert (upsampler_class.__name__, network_class.__name__) == ("RealESRGANer", "RRDBNet")
