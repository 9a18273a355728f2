"""Parts2Whole's attention, as diffusers attention processors (docs/method.md §4.2-4.4).

- `ReferenceCaptureProcessor` (appearance encoder, self-attention): keeps the masked input.
- `SharedSelfAttnProcessor` (denoising UNet, self-attention): the conditional branch's queries
  attend to their own tokens and to every part's kept features. In a training batch
  (`ReferenceBank.training_batch`) each row attends to its own sample's present parts only, with
  the reference keys/values projected in every forward so that gradients reach both UNets.
- `DecoupledCrossAttnProcessor` (denoising UNet, cross-attention): text tokens through
  `to_k`/`to_v`, image tokens through its own `to_k_dc`/`to_v_dc`, two attentions summed.

The processors handle Stable Diffusion's attention layers only (no norms, biases or residuals inside
the layer); `install_processors` checks that before it installs anything.
"""

import math

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn
from torch.nn import functional as F

from .labels import MAX_PARTS
from .reference import ReferenceBank, ReferenceCaptured, active_bank, last_self_attention_name


def split_heads(attn: Attention, tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, heads * d) -> (B, heads, N, d)."""
    batch, length, channels = tokens.shape
    return tokens.view(batch, length, attn.heads, channels // attn.heads).transpose(1, 2)


def attention_output(attn: Attention, heads: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) attention result -> the layer's output (B, N, C)."""
    batch, num_heads, length, head_dim = heads.shape
    merged = heads.transpose(1, 2).reshape(batch, length, num_heads * head_dim)
    return attn.to_out[1](attn.to_out[0](merged))


def check_no_attention_mask(attention_mask: torch.Tensor | None) -> None:
    if attention_mask is not None:
        raise NotImplementedError("Parts2Whole's attention processors take no attention mask.")


class ReferenceCaptureProcessor:
    """Self-attention of the appearance encoder that also stores its (masked) input in the active
    bank (`ReferenceBank.active`).

    The attention itself is plain: the appearance encoder's own forward is unchanged. The
    processor of the last block stops the forward once it has stored its input.
    """

    def __init__(self, name: str, is_last: bool) -> None:
        self.name = name
        self.is_last = is_last
        self.plain = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        bank = active_bank()
        if bank is not None and bank.part_masks is not None:
            bank.store(self.name, hidden_states)
            if self.is_last:
                raise ReferenceCaptured
        return self.plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class SharedSelfAttnProcessor:
    """Self-attention of the denoising UNet, shared with the parts' features (docs/method.md §4.3).

    Conditional rows: queries are the row's own tokens; keys/values are its own tokens plus every
    part's kept features, read from the active bank (`ReferenceBank.active`; none active: plain
    self-attention). The reference keys/values are projected once per generation (on first use,
    so that offloaded weights are already on the device) and kept in the bank's cache.
    Masked-out reference tokens are zero vectors and so zero keys and values: instead of carrying
    them, one zero-valued key stands for all of them with a score of log(count), which adds exactly
    count * exp(0) to the softmax denominator and nothing to the numerator, as they would. The score
    is carried by extra head dimensions (`fold_dimensions`), not by a float mask, so the attention
    runs mask-free and the fused (flash, cuDNN) kernels stay available.
    Unconditional rows (the first `bank.num_uncond`) use plain self-attention.

    In a training batch (`bank.present` set) there is no cache and no folding: each row's keys and
    values are its own tokens plus its own sample's present parts' tokens (zero ones included,
    which dilute the softmax as the folded key does), padding masked out, so a sample computes
    what a generation with only its present parts would.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_no_attention_mask(attention_mask)
        query = split_heads(attn, attn.to_q(hidden_states))
        key = split_heads(attn, attn.to_k(hidden_states))
        value = split_heads(attn, attn.to_v(hidden_states))
        bank = active_bank()
        if bank is None or self.name not in bank.features:
            return attention_output(attn, F.scaled_dot_product_attention(query, key, value))
        if bank.present is not None:
            return attention_output(attn, self.per_sample_attention(attn, bank, query, key, value))

        num_uncond = bank.num_uncond
        num_cond = hidden_states.shape[0] - num_uncond
        head_dim = query.shape[-1]
        ref_key, ref_value = self.reference_keys_values(attn, bank)
        cond_query, own_key, own_value = query[num_uncond:], key[num_uncond:], value[num_uncond:]
        extra = ref_key.shape[-1] - head_dim
        if extra:  # the fold key's score: ones in the queries' extra dimensions, zeros in the own keys'
            cond_query = F.pad(cond_query, (0, extra), value=1.0)
            own_key, own_value = F.pad(own_key, (0, extra)), F.pad(own_value, (0, extra))
        cond_key = torch.cat([own_key, ref_key.expand(num_cond, -1, -1, -1)], dim=2)
        cond_value = torch.cat([own_value, ref_value.expand(num_cond, -1, -1, -1)], dim=2)
        out = F.scaled_dot_product_attention(cond_query, cond_key, cond_value, scale=head_dim**-0.5)[..., :head_dim]
        if num_uncond:
            uncond = slice(0, num_uncond)
            uncond_out = F.scaled_dot_product_attention(query[uncond], key[uncond], value[uncond])
            out = torch.cat([uncond_out, out])
        return attention_output(attn, out)

    def per_sample_attention(
        self, attn: Attention, bank: ReferenceBank, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        """Training: every row attends to its own tokens and its own sample's present parts only."""
        references, keep = bank.per_sample_features(self.name)
        if references.shape[0] != query.shape[0]:
            raise ValueError(f"The training batch has {references.shape[0]} samples; the UNet got {query.shape[0]}.")
        key = torch.cat([key, split_heads(attn, attn.to_k(references))], dim=2)
        value = torch.cat([value, split_heads(attn, attn.to_v(references))], dim=2)
        keep = torch.cat([keep.new_ones(keep.shape[0], query.shape[2]), keep], dim=1)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=keep[:, None, None])

    def reference_keys_values(self, attn: Attention, bank: ReferenceBank) -> tuple[torch.Tensor, torch.Tensor]:
        """The parts' keys and values (1, heads, L, d), from the cache or made once. With masked-out
        tokens, the kept ones and the fold key, in d + `fold_dimensions(d)` dimensions."""
        if self.name not in bank.cache:
            features = bank.features[self.name]
            tokens = features.reshape(-1, features.shape[-1])
            nonzero = tokens.any(dim=-1)
            num_zero = int(tokens.shape[0] - nonzero.sum())
            ref_key = split_heads(attn, attn.to_k(tokens[nonzero][None]))
            ref_value = split_heads(attn, attn.to_v(tokens[nonzero][None]))
            if num_zero:
                head_dim = ref_key.shape[-1]
                extra = fold_dimensions(head_dim)
                fold_key = ref_key.new_zeros(*ref_key.shape[:2], 1, head_dim + extra)
                fold_key[..., head_dim] = math.log(num_zero) * head_dim**0.5  # times the queries' 1, then the scale
                ref_key = torch.cat([F.pad(ref_key, (0, extra)), fold_key], dim=2)
                ref_value = F.pad(ref_value, (0, extra, 0, 1))
            bank.cache[self.name] = (ref_key, ref_value)
        return bank.cache[self.name]


def fold_dimensions(head_dim: int) -> int:
    """Extra head dimensions that carry the fold key's score: at least one, and a multiple of 8 in all,
    as the fused kernels want (flash attention rounds the head size up to 32, 64, 96... anyway)."""
    return 8 - head_dim % 8


class DecoupledCrossAttnProcessor(nn.Module):
    """Cross-attention with separate projections for the image tokens (docs/method.md §4.4).

    The context is (B, text tokens + `num_image_tokens`, D): the text part goes through the layer's
    own `to_k`/`to_v`, the image tokens through `to_k_dc`/`to_v_dc`; the same queries attend to
    each, and the two results are summed (image part times `scale`) before `to_out`.
    """

    def __init__(
        self, hidden_size: int, cross_attention_dim: int, num_image_tokens: int = MAX_PARTS, scale: float = 1.0
    ) -> None:
        super().__init__()
        self.num_image_tokens = num_image_tokens
        self.scale = scale
        self.to_k_dc = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_dc = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def forward(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_no_attention_mask(attention_mask)
        text = encoder_hidden_states[:, : -self.num_image_tokens]
        image = encoder_hidden_states[:, -self.num_image_tokens :]
        query = split_heads(attn, attn.to_q(hidden_states))
        text_out = F.scaled_dot_product_attention(
            query, split_heads(attn, attn.to_k(text)), split_heads(attn, attn.to_v(text))
        )
        image_out = F.scaled_dot_product_attention(
            query, split_heads(attn, self.to_k_dc(image)), split_heads(attn, self.to_v_dc(image))
        )
        return attention_output(attn, text_out + self.scale * image_out)


def check_supported_attention(name: str, attn: Attention) -> None:
    """Refuse attention layers with parts the processors above do not apply."""
    extras = {
        "spatial_norm": attn.spatial_norm is not None,
        "group_norm": attn.group_norm is not None,
        "norm_q": attn.norm_q is not None,
        "norm_cross": bool(attn.norm_cross),
        "added kv projections": getattr(attn, "add_k_proj", None) is not None,
        "residual_connection": attn.residual_connection,
        "rescale_output_factor": attn.rescale_output_factor != 1.0,
        "q/k/v bias": any(proj.bias is not None for proj in (attn.to_q, attn.to_k, attn.to_v)),
    }
    found = [what for what, present in extras.items() if present]
    if found:
        raise ValueError(f"Attention layer {name} has {', '.join(found)}: not a Stable Diffusion 1.x layout.")


def attention_layers(unet: UNet2DConditionModel) -> dict[str, Attention]:
    return {name: module for name, module in unet.named_modules() if isinstance(module, Attention)}


def install_processors(unet: UNet2DConditionModel, reference_unet: UNet2DConditionModel) -> None:
    """Give both UNets Parts2Whole's processors, which read the active bank (`ReferenceBank.active`).

    Decoupled cross-attention processors the UNet already has are kept (they own weights); new ones
    start as copies of the layer's text projections, as when training starts.
    """
    unet_layers = attention_layers(unet)
    reference_layers = attention_layers(reference_unet)
    if unet_layers.keys() != reference_layers.keys():
        raise ValueError("The UNet and the reference UNet must have the same architecture.")
    for prefix, layers in (("unet.", unet_layers), ("reference_unet.", reference_layers)):
        for name, attn in layers.items():
            check_supported_attention(prefix + name, attn)

    unet_processors = {}
    for name, attn in unet_layers.items():
        if not attn.is_cross_attention:
            unet_processors[f"{name}.processor"] = SharedSelfAttnProcessor(name)
        elif isinstance(attn.processor, DecoupledCrossAttnProcessor):
            unet_processors[f"{name}.processor"] = attn.processor
        else:
            processor = DecoupledCrossAttnProcessor(attn.to_k.out_features, attn.to_k.in_features)
            processor.to_k_dc.weight.data.copy_(attn.to_k.weight.data)
            processor.to_v_dc.weight.data.copy_(attn.to_v.weight.data)
            unet_processors[f"{name}.processor"] = processor.to(attn.to_k.weight.device, attn.to_k.weight.dtype)
    unet.set_attn_processor(unet_processors)

    last = last_self_attention_name(reference_unet)
    reference_processors = {}
    for name, attn in reference_layers.items():
        if attn.is_cross_attention:
            reference_processors[f"{name}.processor"] = AttnProcessor2_0()
        else:
            reference_processors[f"{name}.processor"] = ReferenceCaptureProcessor(name, is_last=name == last)
    reference_unet.set_attn_processor(reference_processors)
