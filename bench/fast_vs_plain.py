"""Largest difference between the fast attention path and the plain docs/method.md §4 one, per case.

    python bench/fast_vs_plain.py [--device cuda] [--dtype float16]

Uses the tests' tiny models (saved in the released layout) and their plain implementation
(parts2whole/testing/plain_reference.py); prints one line per case of parts x masks x guidance.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging

from parts2whole import Parts2WholePipeline
from parts2whole.testing.inputs import call_kwargs
from parts2whole.testing.plain_reference import install_plain_processors
from parts2whole.testing.tiny_models import write_released_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--no-tf32", action="store_true", help="full float32 in CUDA convolutions and matmuls")
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    dtype = getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as folder:
        write_released_checkpoint(Path(folder) / "tiny")
        print(
            f"on {args.device} {args.dtype}{' without TF32' if args.no_tf32 else ''}: max |latent difference| of"
            " fast vs plain, of fast vs fast run again (run-to-run noise), and the latents' max |value|"
        )
        for parts in (1, 3, 6):
            for masks in (False, True):
                for cfg in (False, True):
                    results = []
                    for plain in (False, True, False):
                        pipe = Parts2WholePipeline.from_pretrained(Path(folder) / "tiny", torch_dtype=dtype).to(args.device)
                        pipe.set_progress_bar_config(disable=True)
                        if plain:
                            install_plain_processors(pipe)
                        kwargs = call_kwargs(parts, masks, guidance_scale=7.5 if cfg else 1.0, output_type="latent")
                        results.append(pipe(**kwargs).images.float())
                    difference = (results[0] - results[1]).abs().max().item()
                    noise = (results[0] - results[2]).abs().max().item()
                    scale = results[1].abs().max().item()
                    print(f"  parts={parts} masks={masks!s:5} cfg={cfg!s:5}  {difference:.2e}  {noise:.2e}  ({scale:.2f})")


if __name__ == "__main__":
    main()
