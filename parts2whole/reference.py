"""The appearance encoder's side of Parts2Whole (docs/method.md §4.2).

`reference_unet` is run once per generation, one batch row per part, at timestep 0, with each part's
label as its text. Capture processors (see `attention.py`) keep the input of every self-attention,
multiplied by the part's mask on that block's token grid, in a `ReferenceBank`; the denoising UNet
reads them back at every step. The run stops as soon as the last block has been captured: nothing
after it is used.

Each call has a bank of its own, never one kept on the pipeline or the models: several generations
can run at once on one loaded model (the demo's queue runs them in threads). The processors are
installed once and read the bank the running call made active (`ReferenceBank.active`, a context
variable: each thread and each asyncio task sees its own); with none active they attend plainly.

Training (docs/method.md §6) runs a batch of different people, each with `MAX_PARTS` part slots:
`ReferenceBank.training_batch(present)` says which slots each sample has (dropped parts and "all
references dropped" are just False there), `capture_training_features` runs the appearance encoder
on the present slots only, and each denoising row then attends to its own parts alone. Nothing is
detached or cached, so the loss reaches `reference_unet` through the kept features.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from diffusers import UNet2DConditionModel
from torch.nn import functional as F


class ReferenceCaptured(Exception):
    """Raised by the capture of the last block to end the appearance encoder's forward early."""


def token_grid_mask(part_masks: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Bring pixel masks (P, 1, H, W) to a block's token grid: returns (P, num_tokens, 1).

    The grid is the UNet's own: ceil(H / s) x ceil(W / s) for the power of two s that gives
    `num_tokens` (docs/method.md §4.2's s = 2^ceil(log2(H W / tokens) / 2) wherever that formula is defined).
    The mask is resized nearest-neighbour, then dilated by one token (3 x 3 all-ones convolution,
    clamped to [0, 1]).
    """
    height, width = part_masks.shape[-2:]
    stride = 1
    while math.ceil(height / stride) * math.ceil(width / stride) > num_tokens:
        stride *= 2
    grid_size = (math.ceil(height / stride), math.ceil(width / stride))
    if grid_size[0] * grid_size[1] != num_tokens:
        raise ValueError(f"A {height}x{width} mask has no token grid of {num_tokens} tokens.")
    grid = F.interpolate(part_masks.float(), size=grid_size, mode="nearest")
    kernel = torch.ones(1, 1, 3, 3, device=grid.device, dtype=grid.dtype)
    grid = F.conv2d(grid, kernel, padding=1).clamp(0.0, 1.0)
    return grid.flatten(1).unsqueeze(-1)


class ReferenceBank:
    """The masked reference features of one generation (or one training step), read by the two
    UNets' processors while the bank is active.

    `features[name]` is (parts, tokens, channels) for the transformer block whose self-attention
    processor is `name` (the same module path in both UNets). `num_uncond` is how many leading
    batch rows of the denoising UNet belong to the unconditional branch, which ignores the bank.
    `cache` holds what the processors derive from the features once per generation.

    In a training batch (`present` is set) the feature rows are the present (sample, slot) pairs in
    row-major order, and every row of the denoising UNet is conditional.
    """

    def __init__(self) -> None:
        self.part_masks: torch.Tensor | None = None
        self.features: dict[str, torch.Tensor] = {}
        self.num_uncond = 0
        self.cache: dict[str, tuple] = {}
        self.present: torch.Tensor | None = None
        self._part_rows: tuple[torch.Tensor, ...] = ()
        self._part_keep: torch.Tensor | None = None
        self._grid_masks: dict[int, torch.Tensor] = {}

    @contextmanager
    def active(self) -> Iterator["ReferenceBank"]:
        """Within the block, the processors of this thread or task read this bank."""
        token = _active_bank.set(self)
        try:
            yield self
        finally:
            _active_bank.reset(token)

    @contextmanager
    def training_batch(self, present: torch.Tensor) -> Iterator["ReferenceBank"]:
        """A training step, in which sample b attends only to the part slots `present[b]` marks.

        `present` is (B, P) bool on the UNets' device, P part slots per sample; a sample with no
        slot present gets plain self-attention. Use a new bank for each step. Fill it with
        `capture_training_features`, then run the UNet forward and the backward inside: gradient
        checkpointing re-runs the processors in the backward, and they need the bank active. The
        layout of the padded per-sample features is worked out here, once per step rather than in
        every layer.
        """
        self.present = present
        counts = present.sum(dim=1)
        slot_rank = present.cumsum(dim=1) - 1
        self._part_rows = (present.nonzero(as_tuple=True)[0], slot_rank[present])
        self._part_keep = torch.arange(int(counts.max()), device=present.device) < counts[:, None]
        with self.active():
            yield self

    def per_sample_features(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: each sample's present parts' features, in slot order, padded to the most parts.

        Returns (B, K * N, C) features and a (B, K * N) bool mask: True on the tokens of a present
        part (its masked-out zero tokens included: they dilute the softmax as in inference), False
        on the padding that makes every sample K parts long.
        """
        features = self.features[name]
        batch, max_parts = self._part_keep.shape
        padded = features.new_zeros(batch, max_parts, *features.shape[1:]).index_put(self._part_rows, features)
        return padded.flatten(1, 2), self._part_keep.repeat_interleave(features.shape[1], dim=1)

    def store(self, name: str, self_attention_input: torch.Tensor) -> None:
        """Keep a block's self-attention input (P, N, C) multiplied by the part masks on its grid."""
        num_tokens = self_attention_input.shape[1]
        if num_tokens not in self._grid_masks:
            self._grid_masks[num_tokens] = token_grid_mask(self.part_masks, num_tokens)
        grid = self._grid_masks[num_tokens].to(self_attention_input.dtype)
        self.features[name] = self_attention_input * grid


_active_bank: ContextVar[ReferenceBank | None] = ContextVar("parts2whole_reference_bank", default=None)


def active_bank() -> ReferenceBank | None:
    """The bank of the call running in this thread or task, if any."""
    return _active_bank.get()


def capture_reference_features(
    reference_unet: UNet2DConditionModel,
    bank: ReferenceBank,
    latents: torch.Tensor,
    label_embeds: torch.Tensor,
    part_masks: torch.Tensor,
) -> None:
    """Run the appearance encoder on (P, 4, h, w) reference latents, filling `bank.features`.

    `label_embeds` (P, 77, D) is the text embedding of each part's label; `part_masks` is
    (P, 1, H, W) in [0, 1] at pixel resolution.
    """
    bank.part_masks = part_masks
    try:
        with bank.active():
            reference_unet(latents, 0, encoder_hidden_states=label_embeds)
    except ReferenceCaptured:
        pass


def capture_training_features(
    reference_unet: UNet2DConditionModel,
    bank: ReferenceBank,
    latents: torch.Tensor,
    label_embeds: torch.Tensor,
    part_masks: torch.Tensor,
) -> None:
    """Run the appearance encoder on the present part slots of a training batch, and only those.

    `latents` (B, P, 4, h, w), `label_embeds` (P, 77, D) or (B, P, 77, D), `part_masks`
    (B, P, 1, H, W); `bank` must be inside `training_batch`. Absent or dropped slots cost nothing
    and their inputs are never read (fill them with anything, e.g. zeros). With no slot present the
    encoder does not run and every sample gets plain self-attention.
    """
    rows = bank.present.flatten()
    if not rows.any():
        return
    label_embeds = label_embeds.expand(*bank.present.shape, *label_embeds.shape[-2:])
    present_rows = (tensor.flatten(0, 1)[rows] for tensor in (latents, label_embeds, part_masks))
    capture_reference_features(reference_unet, bank, *present_rows)


def last_self_attention_name(unet: UNet2DConditionModel) -> str:
    """Module path of the last self-attention a forward runs: the end of the appearance encoder."""
    last_up_block = unet.up_blocks[-1]
    if not getattr(last_up_block, "attentions", None):
        raise ValueError("The reference UNet must end with a cross-attention up block, as Stable Diffusion's does.")
    last_attn1 = last_up_block.attentions[-1].transformer_blocks[-1].attn1
    return next(name for name, module in unet.named_modules() if module is last_attn1)


def unused_reference_keys(unet: UNet2DConditionModel) -> set[str]:
    """The state-dict keys of a reference UNet that never take part in the appearance encoder.

    They are everything after the input of the last self-attention: that self-attention and the
    rest of its transformer block, the last `proj_out`, and the output head. The released
    `reference_unet/` was saved without them.
    """
    last_attn1 = last_self_attention_name(unet)
    last_block = last_attn1.rsplit(".", 1)[0]
    last_transformer = last_block.split(".transformer_blocks.")[0]
    unused_prefixes = (
        "conv_norm_out.",
        "conv_out.",
        f"{last_transformer}.proj_out.",
        f"{last_block}.attn1.",
        f"{last_block}.norm2.",
        f"{last_block}.attn2.",
        f"{last_block}.norm3.",
        f"{last_block}.ff.",
    )
    return {key for key in unet.state_dict() if key.startswith(unused_prefixes)}
