"""A plain, obviously-correct implementation of docs/method.md §4.2-4.4, for checking the fast processors.

Nothing here is shared with `parts2whole.attention` or `parts2whole.reference`: masks are brought
to token grids with explicit index arithmetic, every part's every token (zeros included) joins one
full attention, and attention is softmax(Q K^T / sqrt(d)) V written out with matmuls.
"""

import math

import torch
from diffusers.models.attention_processor import Attention

from parts2whole.reference import active_bank


def plain_token_grid(masks: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(P, 1, H, W) -> (P, num_tokens, 1): nearest resize to the grid, then 3x3 sum clamped to 1."""
    height, width = masks.shape[-2:]
    stride = 2 ** math.ceil(math.log2(height * width / num_tokens) / 2)
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    assert rows * cols == num_tokens
    row_index = [int(math.floor(r * height / rows)) for r in range(rows)]
    col_index = [int(math.floor(c * width / cols)) for c in range(cols)]
    grid = masks[:, 0][:, row_index][:, :, col_index]
    padded = torch.nn.functional.pad(grid, (1, 1, 1, 1))
    summed = sum(padded[:, dr : dr + rows, dc : dc + cols] for dr in range(3) for dc in range(3))
    return summed.clamp(0, 1).reshape(masks.shape[0], num_tokens, 1)


def plain_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, Nq, C), (B, Nk, C), (B, Nk, C) -> (B, Nq, C), multi-head, written out."""
    batch, n_query, channels = query.shape
    d = channels // heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, x.shape[1], heads, d).transpose(1, 2)

    scores = split(query) @ split(key).transpose(-1, -2) / math.sqrt(d)
    out = scores.softmax(dim=-1) @ split(value)
    return out.transpose(1, 2).reshape(batch, n_query, channels)


class PlainCapture:
    """Appearance-encoder self-attention: store norm1(x) * grid mask in the call's bank, attend
    plainly, never stop."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        bank = active_bank()
        grid = plain_token_grid(bank.part_masks.float(), hidden_states.shape[1]).to(hidden_states.dtype)
        bank.features[self.name] = hidden_states * grid
        out = plain_attention(attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states), attn.heads)
        return attn.to_out[0](out)


class PlainSharedSelfAttention:
    """Conditional rows: keys/values = to_k/to_v of concat(own tokens, every part's every token)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        bank = active_bank()
        outputs = []
        for row in range(hidden_states.shape[0]):
            own = hidden_states[row : row + 1]
            context = own
            if bank is not None and self.name in bank.features and row >= bank.num_uncond:
                features = bank.features[self.name]
                context = torch.cat([own, features.reshape(1, -1, features.shape[-1])], dim=1)
            outputs.append(plain_attention(attn.to_q(own), attn.to_k(context), attn.to_v(context), attn.heads))
        return attn.to_out[0](torch.cat(outputs))


class PlainDecoupledCrossAttention:
    """Text tokens through to_k/to_v, the last `num_image_tokens` through to_k_dc/to_v_dc, summed."""

    def __init__(self, to_k_dc: torch.nn.Linear, to_v_dc: torch.nn.Linear, num_image_tokens: int) -> None:
        self.to_k_dc, self.to_v_dc, self.num_image_tokens = to_k_dc, to_v_dc, num_image_tokens

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        text = encoder_hidden_states[:, : -self.num_image_tokens]
        image = encoder_hidden_states[:, -self.num_image_tokens :]
        query = attn.to_q(hidden_states)
        text_out = plain_attention(query, attn.to_k(text), attn.to_v(text), attn.heads)
        image_out = plain_attention(query, self.to_k_dc(image), self.to_v_dc(image), attn.heads)
        return attn.to_out[0](text_out + image_out)


def install_plain_processors(pipe) -> None:
    """Swap every processor of `pipe`'s two UNets for the plain ones above (the call's bank, the same weights)."""
    unet_processors = {}
    for key, processor in pipe.unet.attn_processors.items():
        name = key.removesuffix(".processor")
        if name.endswith("attn1"):
            unet_processors[key] = PlainSharedSelfAttention(name)
        else:
            unet_processors[key] = PlainDecoupledCrossAttention(
                processor.to_k_dc, processor.to_v_dc, processor.num_image_tokens
            )
    pipe.unet.set_attn_processor(unet_processors)
    reference_processors = {}
    for key, processor in pipe.reference_unet.attn_processors.items():
        name = key.removesuffix(".processor")
        reference_processors[key] = PlainCapture(name) if name.endswith("attn1") else processor
    pipe.reference_unet.set_attn_processor(reference_processors)
