"""The pose guider matches the released `pose_guider/` (docs/method.md §2-3) and enters after `conv_in`."""

import pytest
import torch

from parts2whole import PoseGuider
from parts2whole.pose_guider import install_pose_hook, pose_added_to_conv_in
from parts2whole.testing.tiny_models import tiny_unet


def test_released_config_has_the_released_names_and_size() -> None:
    guider = PoseGuider()
    assert dict(guider.config)["block_out_channels"] == (16, 32, 96, 256)
    names = {key.rsplit(".", 1)[0] for key in guider.state_dict()}
    assert names == {"conv_in", "conv_out"} | {f"blocks.{i}" for i in range(6)}
    # 4.35 MB of fp32 in the released file
    assert sum(p.numel() for p in guider.parameters()) * 4 == 4_345_920
    assert [tuple(block.weight.shape) for block in guider.blocks] == [
        (16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3), (96, 32, 3, 3), (96, 96, 3, 3), (256, 96, 3, 3)
    ]
    assert [block.stride for block in guider.blocks] == [(1, 1), (2, 2)] * 3


def test_output_is_zero_initialised_and_at_latent_resolution() -> None:
    guider = PoseGuider()
    features = guider(torch.rand(1, 3, 768, 512))
    assert features.shape == (1, 320, 96, 64) and not features.any()


def test_features_are_added_after_conv_in_only_inside_the_block() -> None:
    unet = tiny_unet(0)
    seen = []  # what the first down block receives: conv_in's output, plus the pose or not
    unet.down_blocks[0].register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["hidden_states"]), with_kwargs=True
    )
    sample, context = torch.randn(2, 4, 8, 6), torch.randn(2, 5, 32)
    pose = torch.randn(1, 32, 8, 6)
    plain_conv_in = unet.conv_in(sample)
    install_pose_hook(unet)
    install_pose_hook(unet)  # a second pipeline on the same UNet: the pose is still added once
    with pose_added_to_conv_in(unet, pose):
        with_pose = unet(sample, 1, encoder_hidden_states=context).sample
    torch.testing.assert_close(seen[-1], plain_conv_in + pose)
    without_pose = unet(sample, 1, encoder_hidden_states=context).sample
    assert (with_pose - without_pose).abs().max() > 1e-3
    torch.testing.assert_close(seen[-1], plain_conv_in)


def test_a_unet_without_the_hook_is_refused() -> None:
    with pytest.raises(RuntimeError, match="install_pose_hook"):
        with pose_added_to_conv_in(tiny_unet(0), torch.zeros(1, 32, 8, 6)):
            pass
