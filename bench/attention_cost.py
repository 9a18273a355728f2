"""Self-attention work of one denoising step: the fast path against two plain ones.

    python bench/attention_cost.py [--height 768 --width 512 --parts 6 --kept 0.5] [--time --device cuda]

Paths compared, all with classifier-free guidance (one unconditional and one conditional row):
- fast: `SharedSelfAttnProcessor` (queries = own tokens, reference keys/values projected once per
  generation, masked-out tokens folded into one zero-valued key scored log(count), unconditional row plain);
- plain: docs/method.md §4.3 as written: every reference token, zeros included, projected to keys/values
  at every step (with the same fused attention kernel as the fast path);
- released: the authors' script: own and reference tokens concatenated as queries too, in both
  rows, the reference queries thrown away, the unconditional row recomputed without references.

Multiply-adds are counted from the tensor shapes of Stable Diffusion 1.5's 16 self-attention
layers; `--time` also measures one UNet step of each path with a randomly initialised SD 1.5 UNet.
"""

import argparse
import math
import time

import torch
from diffusers import UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from torch.nn import functional as F

from parts2whole.attention import SharedSelfAttnProcessor, attention_output, install_processors, split_heads
from parts2whole.reference import ReferenceBank, capture_reference_features

SD15 = dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8, layers_per_block=2)
# (channels, layers) of SD 1.5's self-attention layers per resolution level (down + up, and the mid block)
LEVELS = [(320, 5), (640, 5), (1280, 5), (1280, 1)]


def attention_macs(tokens_q: int, tokens_kv: int, channels: int) -> int:
    """Q K^T and A V."""
    return 2 * tokens_q * tokens_kv * channels


def step_macs(height: int, width: int, parts: int, kept: float, steps: int) -> dict[str, float]:
    """Multiply-adds of all self-attention layers in one CFG step (projections included)."""
    totals = {"fast": 0.0, "plain": 0.0, "released": 0.0}
    grid_h, grid_w = math.ceil(height / 8), math.ceil(width / 8)
    for level, (channels, layers) in enumerate(LEVELS):
        n = grid_h * grid_w
        refs = parts * n
        kept_refs = round(refs * kept) + (1 if kept < 1 else 0)
        projections = lambda tokens, channels=channels: tokens * channels * channels
        uncond = 4 * projections(n) + attention_macs(n, n, channels)
        fast = uncond + 4 * projections(n) + attention_macs(n, n + kept_refs, channels) + 2 * projections(kept_refs) / steps
        plain = uncond + 2 * projections(n) + 2 * projections(n + refs) + attention_macs(n, n + refs, channels)
        released = 2 * (4 * projections(n + refs) + attention_macs(n + refs, n + refs, channels)) + uncond
        for name, value in (("fast", fast), ("plain", plain), ("released", released)):
            totals[name] += layers * value
        if level < len(LEVELS) - 1:
            grid_h, grid_w = math.ceil(grid_h / 2), math.ceil(grid_w / 2)
    return totals


def sdpa_attention(attn, query_tokens: torch.Tensor, key_value_tokens: torch.Tensor) -> torch.Tensor:
    """attn's projections and fused attention, queries from one token set, keys/values from another."""
    query = split_heads(attn, attn.to_q(query_tokens))
    key = split_heads(attn, attn.to_k(key_value_tokens))
    value = split_heads(attn, attn.to_v(key_value_tokens))
    return attention_output(attn, F.scaled_dot_product_attention(query, key, value))


class ConcatenatingSelfAttention:
    """Every reference token (zeros included) projected at every step; `queries_too` adds the
    authors' reference queries, whose outputs are thrown away. Unconditional rows: plain."""

    def __init__(self, name: str, bank: ReferenceBank, queries_too: bool) -> None:
        self.name, self.bank, self.queries_too = name, bank, queries_too

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        features = self.bank.features.get(self.name)
        if features is None:
            return sdpa_attention(attn, hidden_states, hidden_states)
        rows = hidden_states.shape[0]
        tokens = torch.cat([hidden_states, features.reshape(1, -1, features.shape[-1]).expand(rows, -1, -1)], dim=1)
        if self.queries_too:  # the released script: both rows with references, uncond recomputed
            out = sdpa_attention(attn, tokens, tokens)[:, : hidden_states.shape[1]]
        else:
            out = sdpa_attention(attn, hidden_states, tokens)
        uncond = hidden_states[: self.bank.num_uncond]
        return torch.cat([sdpa_attention(attn, uncond, uncond), out[self.bank.num_uncond :]])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run, device: torch.device, repeats: int) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def self_attention_time(unet: UNet2DConditionModel, run, device: torch.device) -> float:
    """Seconds spent inside the self-attention layers during one `run()` (synchronised per layer)."""
    spent, handles = [0.0], []

    def enter(module, args):
        synchronize(device)
        module.started = time.perf_counter()

    def leave(module, args, output):
        synchronize(device)
        spent[0] += time.perf_counter() - module.started

    for name, module in unet.named_modules():
        if name.endswith("attn1"):
            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    run()
    for handle in handles:
        handle.remove()
    return spent[0]


def time_steps(args: argparse.Namespace) -> dict[str, float]:
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    with device:
        unet = UNet2DConditionModel(**SD15).to(dtype).eval()
        reference_unet = UNet2DConditionModel(**SD15).to(dtype).eval()
    install_processors(unet, reference_unet)
    fast_processors = unet.attn_processors
    h, w = args.height // 8, args.width // 8
    masks = torch.zeros(args.parts, 1, args.height, args.width, device=device, dtype=dtype)
    masks[..., : max(1, round(args.height * args.kept)), :] = 1  # the top `kept` fraction of each reference
    sample = torch.randn(2, 4, h, w, device=device, dtype=dtype)
    context = torch.randn(2, 83, 768, device=device, dtype=dtype)
    results = {}
    with torch.no_grad(), ReferenceBank().active() as bank:
        capture_reference_features(
            reference_unet, bank, torch.randn(args.parts, 4, h, w, device=device, dtype=dtype),
            torch.randn(args.parts, 77, 768, device=device, dtype=dtype), masks,
        )
        bank.num_uncond = 1
        for name, queries_too in (("fast", None), ("plain", False), ("released", True)):
            processors = dict(fast_processors)
            if queries_too is not None:
                processors.update({
                    key: ConcatenatingSelfAttention(key.removesuffix(".processor"), bank, queries_too)
                    for key, processor in fast_processors.items()
                    if isinstance(processor, SharedSelfAttnProcessor)
                })
            unet.set_attn_processor(processors)
            unet(sample, 10, encoder_hidden_states=context)  # warm-up (and the fast path's one-off projections)
            results[name] = (
                timed(lambda: unet(sample, 10, encoder_hidden_states=context), device, args.repeats),
                self_attention_time(unet, lambda: unet(sample, 10, encoder_hidden_states=context), device),
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--kept", type=float, default=1.0, help="fraction of reference tokens left by the masks")
    parser.add_argument("--steps", type=int, default=50, help="steps the once-per-generation work is spread over")
    parser.add_argument("--time", action="store_true", help="also time one UNet step per path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()

    macs = step_macs(args.height, args.width, args.parts, args.kept, args.steps)
    print(f"self-attention multiply-adds per CFG step, {args.height}x{args.width}, {args.parts} parts, kept {args.kept:.0%}:")
    for name, value in macs.items():
        print(f"  {name:9s} {value / 1e9:10.1f} G   ({value / macs['fast']:.2f} x fast)")
    if args.time:
        print(f"one UNet step (CFG batch 2) on {args.device} {args.dtype}, step time the mean of {args.repeats}:")
        timings = time_steps(args)
        fast_step, fast_attention = timings["fast"]
        for name, (step, attention) in timings.items():
            print(
                f"  {name:9s} step {step * 1000:9.1f} ms ({step / fast_step:.2f} x fast);"
                f" self-attention {attention * 1000:9.1f} ms ({attention / fast_attention:.2f} x fast)"
            )


if __name__ == "__main__":
    main()
