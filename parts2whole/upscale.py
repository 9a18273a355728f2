"""Real-ESRGAN x4plus for small references (the `realesrgan`/`basicsr` packages).

basicsr imports `torchvision.transforms.functional_tensor`, which current torchvision no longer
has; `import_realesrgan` registers that module name as an alias of the function it needs before
importing, so the packages work unmodified.
"""

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

UPSCALE_FACTOR = 4


def import_realesrgan():
    """(RealESRGANer, RRDBNet), importable with current torchvision."""
    name = "torchvision.transforms.functional_tensor"
    if name not in sys.modules and importlib.util.find_spec(name) is None:
        from torchvision.transforms import functional

        alias = types.ModuleType(name)
        alias.rgb_to_grayscale = functional.rgb_to_grayscale
        sys.modules[name] = alias
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan import RealESRGANer

    return RealESRGANer, RRDBNet


def network_weights(weights: str | Path) -> dict[str, torch.Tensor]:
    """The RRDBNet tensors of a Real-ESRGAN checkpoint ({'params_ema': ...} or {'params': ...}, as
    RealESRGANer reads it), read as tensors only: a pickle that would run code is refused. A file
    that is not such a checkpoint (a truncated download, an HTML error page) is a ValueError."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises whatever it meets: KeyError, UnicodeDecodeError, UnpicklingError
        raise ValueError(f"{weights} is not a readable Real-ESRGAN checkpoint ({type(error).__name__}).") from None
    params = state.get("params_ema", state.get("params")) if isinstance(state, dict) else None
    if not isinstance(params, dict) or "conv_first.weight" not in params:
        raise ValueError(f"{weights} is not a Real-ESRGAN checkpoint: it holds no 'params_ema' or 'params' network.")
    return params


class Upscaler:
    """x4 super-resolution of PIL images, tiled so large images fit in memory.

    The network's depth is read from the weights (x4plus has 23 blocks), half precision is used
    on a GPU only.
    """

    def __init__(self, weights: str | Path, device: str = "cpu", tile: int = 256) -> None:
        RealESRGANer, RRDBNet = import_realesrgan()
        params = network_weights(weights)
        num_block = 1 + max(int(key.split(".")[1]) for key in params if key.startswith("body."))
        num_feat = params["conv_first.weight"].shape[0]
        network = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_block=num_block, num_grow_ch=32, scale=UPSCALE_FACTOR)
        use_half = torch.device(device).type == "cuda"
        self.upsampler = RealESRGANer(
            scale=UPSCALE_FACTOR, model_path=str(weights), model=network, tile=tile, tile_pad=10, pre_pad=0,
            half=use_half, device=torch.device(device),
        )

    def __call__(self, image: Image.Image) -> Image.Image:
        """`image` (RGB or RGBA) four times larger. Only the colours go through the network; an alpha
        channel is a mask here, resized plainly (the network's own alpha upscaling can lose it: an
        opaque reference came back fully transparent)."""
        bgr = np.asarray(image.convert("RGB"))[..., ::-1]
        output, _ = self.upsampler.enhance(np.ascontiguousarray(bgr), outscale=UPSCALE_FACTOR)
        upscaled = Image.fromarray(np.ascontiguousarray(output[..., ::-1]))
        if image.mode == "RGBA":
            upscaled.putalpha(image.getchannel("A").resize(upscaled.size, Image.Resampling.BICUBIC))
        return upscaled
