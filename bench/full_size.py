"""Seconds per image and peak GPU memory of the whole pipeline at the released model's size.

    python bench/full_size.py --device cuda [--dtype float16] [--steps 50] [--offload]

The components have Stable Diffusion 1.5's and CLIP ViT-L/14's shapes with random weights (the
released weights cannot be fetched here), so the images are noise but every tensor has the size
the real model's has. The six drawn references of examples/ and a drawn pose are used at 768 x 512.
"""

import argparse
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from parts2whole import Parts2WholePipeline, PoseGuider
from parts2whole.testing.tiny_models import tiny_tokenizer

SD15_UNET = dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8, layers_per_block=2)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
APPEARANCE = {
    "hair or headwear": EXAMPLES / "top_and_trousers" / "hair_headwear.png",
    "face": EXAMPLES / "top_and_trousers" / "face.png",
    "upper body clothes": EXAMPLES / "top_and_trousers" / "upper_body_clothes.png",
    "lower body clothes": EXAMPLES / "top_and_trousers" / "lower_body_clothes.png",
    "whole body clothes": EXAMPLES / "dress" / "whole_body_clothes.png",
    "shoes": EXAMPLES / "top_and_trousers" / "shoes.png",
}


def full_size_pipeline(device: str, dtype: torch.dtype) -> Parts2WholePipeline:
    with torch.device(device):
        torch.manual_seed(0)
        components = dict(
            vae=AutoencoderKL(
                block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2,
                sample_size=512,
            ),
            text_encoder=CLIPTextModel(
                CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
            ),
            tokenizer=tiny_tokenizer(),
            image_encoder=CLIPVisionModelWithProjection(
                CLIPVisionConfig(
                    hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                    patch_size=14, image_size=224, projection_dim=768,
                )
            ),
            feature_extractor=CLIPImageProcessor(),
            unet=UNet2DConditionModel(**SD15_UNET),
            reference_unet=UNet2DConditionModel(**SD15_UNET),
            pose_guider=PoseGuider(),
            scheduler=DDIMScheduler(
                beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                set_alpha_to_one=False, steps_offset=1,
            ),
        )
    pipe = Parts2WholePipeline(**components)
    pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--offload", action="store_true", help="enable_model_cpu_offload() instead of .to(device)")
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()
    dtype = getattr(torch, args.dtype)
    pipe = full_size_pipeline("cpu" if args.offload else args.device, dtype)
    if args.offload:
        pipe.enable_model_cpu_offload(device=args.device)
    appearance = dict(list(APPEARANCE.items())[: args.parts])
    call = dict(
        appearance=appearance,
        mask={"face": EXAMPLES / "top_and_trousers" / "face_mask.png"} if "face" in appearance else None,
        structure={"densepose": EXAMPLES / "poses" / "standing.png"},
        prompt="a person",
        height=768,
        width=512,
        guidance_scale=7.5,
    )
    pipe(**call, num_inference_steps=2)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    image = pipe(**call, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0)).images[0]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
    mode = "model CPU offload" if args.offload else "all on the device"
    print(
        f"{args.parts} parts, 768x512, {args.steps} DDIM steps, CFG 7.5, {args.dtype}, {mode}: "
        f"{seconds:.2f} s per image ({seconds / args.steps * 1000:.1f} ms per step incl. encoders and decode), "
        f"peak GPU memory {peak:.2f} GiB, output {image.size}"
    )


if __name__ == "__main__":
    main()
