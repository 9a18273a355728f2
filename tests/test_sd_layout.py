"""At Stable Diffusion 1.5's real size (built on the meta device: no memory, no weights)."""

import torch
from accelerate import init_empty_weights
from diffusers import UNet2DConditionModel

from parts2whole.attention import (
    DecoupledCrossAttnProcessor,
    ReferenceCaptureProcessor,
    SharedSelfAttnProcessor,
    install_processors,
)
from parts2whole.reference import last_self_attention_name, unused_reference_keys

SD15_UNET = dict(
    block_out_channels=(320, 640, 1280, 1280),
    cross_attention_dim=768,
    attention_head_dim=8,
    layers_per_block=2,
    sample_size=64,
)


def sd15_unets() -> tuple[UNet2DConditionModel, UNet2DConditionModel]:
    with init_empty_weights():
        return UNet2DConditionModel(**SD15_UNET), UNet2DConditionModel(**SD15_UNET)


def test_reference_unet_unused_keys_are_specs_list() -> None:
    reference, _ = sd15_unets()
    block = "up_blocks.3.attentions.2.transformer_blocks.0"
    expected = {"conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias"}
    expected |= {f"up_blocks.3.attentions.2.proj_out.{p}" for p in ("weight", "bias")}
    expected |= {f"{block}.attn1.{proj}.weight" for proj in ("to_q", "to_k", "to_v", "to_out.0")}
    expected |= {f"{block}.attn1.to_out.0.bias"}
    expected |= {f"{block}.{norm}.{p}" for norm in ("norm2", "norm3") for p in ("weight", "bias")}
    expected |= {key for key in reference.state_dict() if key.startswith((f"{block}.attn2.", f"{block}.ff."))}
    assert unused_reference_keys(reference) == expected
    assert last_self_attention_name(reference) == f"{block}.attn1"


def test_sixteen_decoupled_layers_with_released_shapes() -> None:
    unet, reference = sd15_unets()
    with torch.device("meta"):
        install_processors(unet, reference)
    processors = unet.attn_processors
    decoupled = {k: p for k, p in processors.items() if isinstance(p, DecoupledCrossAttnProcessor)}
    assert len(decoupled) == 16
    assert sum(isinstance(p, SharedSelfAttnProcessor) for p in processors.values()) == 16
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor"
    assert tuple(decoupled[key].to_k_dc.weight.shape) == (320, 768)
    assert f"{key}.to_k_dc.weight" in unet.state_dict()
    captures = [p for p in reference.attn_processors.values() if isinstance(p, ReferenceCaptureProcessor)]
    assert len(captures) == 16 and sum(p.is_last for p in captures) == 1
