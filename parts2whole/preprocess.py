"""Images in (paths, arrays, PIL images of any mode), tensors out (docs/method.md §4.1 and §4.5).

Every reader here turns a bad input into a `ValueError` that names the input and the problem.
"""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = Image.Image | np.ndarray | str | os.PathLike

MIN_IMAGE_SIDE = 8
FRAMES = "frames"
"""`load_image` notes in `image.info[FRAMES]` how many frames a file holds, when more than one (an
animated GIF, a multi-page TIFF): only the first is read, and callers may say so."""
MAX_IMAGE_PIXELS = 40_000_000
"""Largest image decoded (40 megapixels, 160 MB as RGBA). The size is read from the file's header
first: a larger JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8, the decoder's own), any other
format is refused before it is decoded, so a small file that declares a huge image (a
decompression bomb) costs nothing."""


def load_image(image: ImageInput, what: str) -> Image.Image:
    """Open `image` as a PIL image, upright (EXIF orientation applied). `what` names it in errors."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"{what}: there is no file {str(path)!r}.")
        try:
            with Image.open(path) as opened:
                fit_decoded_size(opened, what)
                opened.load()
                pil = opened.copy()
                frames = getattr(opened, "n_frames", 1)
            if frames > 1:
                pil.info[FRAMES] = frames
        except Image.DecompressionBombError:
            raise ValueError(f"{what}: {str(path)!r} declares an image too large to open safely.") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"{what}: {str(path)!r} is not a readable image ({error}).") from None
    elif isinstance(image, np.ndarray):
        pil = image_from_array(image, what)
    elif isinstance(image, Image.Image):
        pil = image
    else:
        raise ValueError(f"{what}: expected a PIL image, a numpy array or a path, got {type(image).__name__}.")
    pil = ImageOps.exif_transpose(pil)
    if min(pil.size) < MIN_IMAGE_SIDE:
        raise ValueError(f"{what}: the image is {pil.width}x{pil.height}; it needs at least {MIN_IMAGE_SIDE} pixels a side.")
    return pil


def fit_decoded_size(opened: Image.Image, what: str) -> None:
    """Before decoding `opened` (only its header is read yet): reduce a JPEG over MAX_IMAGE_PIXELS
    at decode time, refuse anything else over it."""
    width, height = opened.size
    if width * height <= MAX_IMAGE_PIXELS:
        return
    if opened.format == "JPEG":
        scale = 2
        while scale < 8 and (width // scale) * (height // scale) > MAX_IMAGE_PIXELS:
            scale *= 2
        opened.draft(opened.mode, (width // scale, height // scale))
        if opened.size[0] * opened.size[1] <= MAX_IMAGE_PIXELS:
            return
    raise ValueError(
        f"{what}: the image is {width}x{height} ({width * height / 1e6:.0f} megapixels); images up to "
        f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are read. Reduce it and try again."
    )


def image_from_array(array: np.ndarray, what: str) -> Image.Image:
    """An (H, W), (H, W, 1|3|4) array of uint8, uint16, bool or floats in [0, 1] as a PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"{what}: an image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}.")
    if array.dtype == np.uint8:
        scaled = array
    elif array.dtype == np.uint16:
        scaled = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif array.dtype == bool:
        scaled = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{what}: the image array holds NaN or infinite values.")
        scaled = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ValueError(f"{what}: unsupported image array type {array.dtype}.")
    return Image.fromarray(np.ascontiguousarray(scaled))


def to_rgba(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGBA: 16/32-bit greyscale scaled down, CMYK and palettes converted."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0.0) > 255.0:
            values = values / 257.0
        elif image.mode == "F" and values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        image = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), mode="L")
    if image.mode not in ("RGBA", "RGB", "L", "LA", "P", "PA"):
        image = image.convert("RGB")
    return image.convert("RGBA")


def composite_on_white(rgba: Image.Image) -> Image.Image:
    """An RGBA image over a white background, as RGB (the reference's transparent parts turn white)."""
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_mask(image: Image.Image) -> Image.Image:
    """A mask image as 8-bit greyscale (white = the part); transparent pixels count as black."""
    rgba = to_rgba(image)
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("L")


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """(C, H, W) float in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def prepare_reference(
    image: ImageInput, mask: ImageInput | None, width: int, height: int, label: str
) -> tuple[torch.Tensor, torch.Tensor, Image.Image]:
    """One part's VAE input (3, H, W) in [-1, 1], its mask (1, H, W) in [0, 1] and its CLIP input.

    The reference is resized to the output size and put on white using its alpha; the mask is the
    given mask, else the alpha (all ones for an opaque image). The CLIP input is the reference as
    given, on white, at its own size.
    """
    rgba = to_rgba(load_image(image, f"the {label!r} image"))
    resized = rgba.resize((width, height), Image.Resampling.BICUBIC)
    pixels = pil_to_tensor(composite_on_white(resized)) * 2.0 - 1.0
    if mask is None:
        mask_image = resized.getchannel("A")
    else:
        mask_image = to_mask(load_image(mask, f"the {label!r} mask")).resize((width, height), Image.Resampling.BICUBIC)
    mask_tensor = pil_to_tensor(mask_image)
    if not mask_tensor.any():
        raise ValueError(
            f"The {label!r} mask is empty: no pixel of the part is marked. Mark the part in white, or give no mask."
        )
    return pixels, mask_tensor, composite_on_white(rgba)


def prepare_pose(image: ImageInput, width: int, height: int) -> torch.Tensor:
    """The DensePose map as the pose guider's input (3, H, W) in [0, 1]; transparent = background."""
    rgba = to_rgba(load_image(image, "the densepose image"))
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    pose = Image.alpha_composite(black, rgba).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return pil_to_tensor(pose)
