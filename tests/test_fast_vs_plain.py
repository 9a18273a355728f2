"""The fast attention path equals a plain implementation of docs/method.md §4 (parts2whole/testing/plain_reference.py)."""

import math
import re

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from parts2whole.attention import (
    DecoupledCrossAttnProcessor,
    ReferenceCaptureProcessor,
    SharedSelfAttnProcessor,
    check_supported_attention,
    install_processors,
)
from parts2whole.reference import ReferenceBank, active_bank, token_grid_mask
from parts2whole.testing.inputs import call_kwargs
from parts2whole.testing.plain_reference import install_plain_processors, plain_token_grid

CASES = [(parts, masks, cfg) for parts in (1, 3, 6) for masks in (False, True) for cfg in (False, True)]


@pytest.mark.parametrize(("num_parts", "with_masks", "with_cfg"), CASES)
def test_fast_path_equals_plain_spec(pipe, num_parts: int, with_masks: bool, with_cfg: bool) -> None:
    kwargs = call_kwargs(num_parts, with_masks, guidance_scale=7.5 if with_cfg else 1.0, output_type="latent")
    fast = pipe(**kwargs).images
    kwargs["generator"] = torch.Generator().manual_seed(0)
    install_plain_processors(pipe)
    plain = pipe(**kwargs).images
    difference = (fast - plain).abs().max().item()
    print(f"\nfast-vs-plain parts={num_parts} masks={with_masks} cfg={with_cfg}: max |diff| = {difference:.3e}")
    assert plain.abs().max() > 0.1
    assert difference < 1e-4


def test_masked_tokens_become_one_zero_valued_key_scored_log_count(pipe, monkeypatch) -> None:
    """Zero (masked-out) reference tokens are dropped for one key whose score is log(their count) for
    every query and whose value is zero, carried by extra head dimensions; no attention gets a mask."""
    masks_given = []
    plain_sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(*args, **kwargs):
        masks_given.append(kwargs.get("attn_mask"))
        return plain_sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    for with_masks in (False, True):
        seen = []

        def inspect_bank(pipeline, step, timestep, tensors, seen=seen):
            bank = active_bank()  # the call's own, active while its steps run
            seen.append(({k: v.clone() for k, v in bank.features.items()}, dict(bank.cache)))
            return tensors

        pipe(**call_kwargs(2, with_masks, callback_on_step_end=inspect_bank))
        features, cache = seen[0]
        assert cache.keys() == features.keys()
        for name, (ref_key, ref_value) in cache.items():
            tokens = features[name].reshape(-1, features[name].shape[-1])
            num_zero = int((~tokens.any(dim=-1)).sum())
            head_dim = tokens.shape[-1] // ref_key.shape[1]  # channels / heads
            if not with_masks:
                assert num_zero == 0 and ref_key.shape[2] == tokens.shape[0] and ref_key.shape[-1] == head_dim
                continue
            assert num_zero > 0 and ref_key.shape[2] == tokens.shape[0] - num_zero + 1
            assert ref_key.shape[-1] % 8 == 0 and ref_key.shape[-1] > head_dim
            assert not ref_key[..., :-1, head_dim:].any() and not ref_value[..., head_dim:].any()
            assert not ref_key[..., -1, :head_dim].any() and not ref_value[..., -1, :].any()
            query = torch.ones(ref_key.shape[-1])  # a query's extra dimensions are ones; its own part does not matter
            query[:head_dim] = torch.randn(head_dim)
            score = (ref_key[0, :, -1] @ query) / math.sqrt(head_dim)
            torch.testing.assert_close(score, torch.full_like(score, math.log(num_zero)))
    assert masks_given and all(mask is None for mask in masks_given)


@pytest.mark.parametrize(("height", "width"), [(64, 48), (768, 512), (776, 520), (512, 512), (1024, 768)])
def test_token_grid_mask_matches_plain(height: int, width: int) -> None:
    generator = torch.Generator().manual_seed(height)
    masks = (torch.rand(3, 1, height, width, generator=generator) > 0.7).float()
    masks[1] *= 0.5  # fractional masks keep their values
    grid_height, grid_width = -(-height // 8), -(-width // 8)
    for _ in range(4):  # the UNet's four levels
        num_tokens = grid_height * grid_width
        assert torch.equal(token_grid_mask(masks, num_tokens), plain_token_grid(masks, num_tokens))
        grid_height, grid_width = -(-grid_height // 2), -(-grid_width // 2)


def test_a_mask_at_the_token_grids_own_size_is_only_dilated_and_a_size_without_a_grid_is_named() -> None:
    """Stride 1 (the mask is the grid): one marked token becomes its 3 x 3 neighbourhood."""
    masks = torch.zeros(1, 1, 4, 3)
    masks[0, 0, 1, 1] = 1.0
    expected = torch.zeros(4, 3)
    expected[0:3, 0:3] = 1.0
    assert torch.equal(token_grid_mask(masks, 12), expected.reshape(1, 12, 1))
    with pytest.raises(ValueError, match=r"^A 4x3 mask has no token grid of 7 tokens\.$"):
        token_grid_mask(masks, 7)


@pytest.mark.parametrize("processor", ["shared self-attention", "decoupled cross-attention"])
def test_the_processors_refuse_an_attention_mask(processor) -> None:
    """Their attention is built from the bank's fold, not from a mask: one passed would be ignored."""
    attn = Attention(query_dim=8, cross_attention_dim=8, heads=2, dim_head=4)
    if processor == "shared self-attention":
        attn.set_processor(SharedSelfAttnProcessor("block"))
    else:
        attn.set_processor(DecoupledCrossAttnProcessor(8, 8, num_image_tokens=2))
    hidden, context = torch.randn(1, 4, 8), torch.randn(1, 5, 8)
    with pytest.raises(NotImplementedError, match=r"^Parts2Whole's attention processors take no attention mask\.$"):
        attn(hidden, encoder_hidden_states=None if processor == "shared self-attention" else context, attention_mask=torch.zeros(1, 1, 4))


def test_the_appearance_encoder_is_plain_when_no_capture_is_under_way(pipe) -> None:
    """With no bank active, or one that holds no part masks, the capture processors only attend."""
    unet = pipe.reference_unet
    assert any(isinstance(p, ReferenceCaptureProcessor) for p in unet.attn_processors.values())
    sample = torch.randn(1, unet.config.in_channels, 8, 6, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 5, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        alone = unet(sample, 10, encoder_hidden_states=context).sample
        with ReferenceBank().active():
            with_empty_bank = unet(sample, 10, encoder_hidden_states=context).sample
        processors = unet.attn_processors
        plain_processors = {name: AttnProcessor2_0() if isinstance(p, ReferenceCaptureProcessor) else p for name, p in processors.items()}
        unet.set_attn_processor(plain_processors)
        plain = unet(sample, 10, encoder_hidden_states=context).sample
        unet.set_attn_processor(processors)
    torch.testing.assert_close(alone, plain, rtol=0, atol=0)
    torch.testing.assert_close(with_empty_bank, plain, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"spatial_norm_dim": 4}, "spatial_norm"),
        ({"norm_num_groups": 2}, "group_norm"),
        ({"qk_norm": "layer_norm"}, "norm_q"),
        ({"cross_attention_norm": "layer_norm"}, "norm_cross"),
        ({"added_kv_proj_dim": 8}, "added kv projections"),
        ({"residual_connection": True}, "residual_connection"),
        ({"rescale_output_factor": 2.0}, "rescale_output_factor"),
        ({"bias": True}, "q/k/v bias"),
    ],
)
def test_an_attention_layer_the_processors_do_not_apply_is_refused_by_what_it_has(options, named) -> None:
    attn = Attention(query_dim=32, cross_attention_dim=32, heads=2, dim_head=16, **options)
    with pytest.raises(ValueError, match=f"^Attention layer down.0 has {re.escape(named)}: not a Stable Diffusion 1.x layout\\.$"):
        check_supported_attention("down.0", attn)
    check_supported_attention("down.0", Attention(query_dim=32, cross_attention_dim=32, heads=2, dim_head=16))


def test_a_reference_unet_of_another_architecture_is_refused(pipe) -> None:
    config = dict(pipe.unet.config)
    config["layers_per_block"] = config["layers_per_block"] + 1
    deeper = UNet2DConditionModel.from_config(config)
    with pytest.raises(ValueError, match=r"^The UNet and the reference UNet must have the same architecture\.$"):
        install_processors(pipe.unet, deeper)
