"""The pose guider: DensePose map in, features added to the denoising UNet's `conv_in` output."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from diffusers import ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn
from torch.nn import functional as F


class PoseGuider(ModelMixin, ConfigMixin):
    """A small conv net that brings a pose map to the UNet's first feature map (docs/method.md §2).

    Parameter names (`conv_in`, `blocks.0`..`blocks.5`, `conv_out`) and the config keys are those
    of the released `pose_guider/`, so the checkpoint loads with `from_pretrained`.
    """

    @register_to_config
    def __init__(
        self,
        conditioning_embedding_channels: int = 320,
        conditioning_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for channels_in, channels_out in zip(block_out_channels[:-1], block_out_channels[1:], strict=True):
            self.blocks.append(nn.Conv2d(channels_in, channels_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, kernel_size=3, padding=1)
        # Zero-initialised so that a fresh guider leaves a pretrained UNet unchanged (as in ControlNet).
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        """`pose`: (B, 3, H, W) in [0, 1]; returns (B, C, H / 2^k, W / 2^k) with k stride-2 convs."""
        hidden = F.silu(self.conv_in(pose))
        for block in self.blocks:
            hidden = F.silu(block(hidden))
        return self.conv_out(hidden)


_active_pose: ContextVar[torch.Tensor | None] = ContextVar("parts2whole_pose_features", default=None)
HOOKED = "_parts2whole_pose_hook"  # marks a conv_in that already adds the active pose


def add_active_pose(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    pose_features = _active_pose.get()
    if pose_features is None:
        return output
    return output + pose_features.to(device=output.device, dtype=output.dtype)


def install_pose_hook(unet: UNet2DConditionModel) -> None:
    """Make every forward of `unet` add the active pose features to the output of `conv_in`.

    Installed once per UNet, when a model is set up (however many pipelines share it; never while
    calls run); the features themselves belong to the running call (`pose_added_to_conv_in`), so
    calls running at once each get their own pose.
    """
    if not getattr(unet.conv_in, HOOKED, False):
        unet.conv_in.register_forward_hook(add_active_pose)
        setattr(unet.conv_in, HOOKED, True)


@contextmanager
def pose_added_to_conv_in(unet: UNet2DConditionModel, pose_features: torch.Tensor) -> Iterator[None]:
    """Within the block, this thread's or task's forwards of `unet` add `pose_features` to the
    output of `conv_in` (a context variable: other calls running at once are not affected).

    `pose_features` (1 or B, C, h, w) broadcasts over the batch, so both guidance branches and
    every image of a generation get the same pose while it is computed once.
    """
    if not getattr(unet.conv_in, HOOKED, False):
        raise RuntimeError("This UNet adds no pose: call install_pose_hook(unet) once, when the model is set up.")
    token = _active_pose.set(pose_features)
    try:
        yield
    finally:
        _active_pose.reset(token)
