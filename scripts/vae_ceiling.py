"""The best a model on a given VAE can score: held-out ground truths encoded and decoded by the VAE,
then scored as `python -m parts2whole.evaluate` scores a generation (ΔE per label, IoU).

    PYTHONPATH=. python scripts/vae_ceiling.py --vae RUN/vae_decoder --data DATA [--limit 50] [--size 128x96]
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from parts2whole.evaluation.scoring import colour_errors, mean_by_label, part_regions, region_colours, silhouette_iou
from parts2whole.training.data import PartsDataset


def as_uint8(pixels: torch.Tensor) -> np.ndarray:
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", type=Path, required=True, help="a VAE folder (a checkpoint's vae/ or a run's vae/)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--size", default="128x96", help="HEIGHTxWIDTH")
    args = parser.parse_args()
    height, width = (int(side) for side in args.size.split("x"))
    dataset = PartsDataset(args.data, args.split, (height, width), random_crop=False)
    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    scores, ious = [], []
    for index in range(min(args.limit, len(dataset))):
        item = dataset[index]
        with torch.no_grad():
            reconstruction = vae.decode(vae.encode(item["pixels"][None]).latent_dist.mode()).sample[0]
        truth, decoded, parsing = as_uint8(item["pixels"]), as_uint8(reconstruction), item["parsing"].numpy()
        regions = part_regions(parsing, dataset.samples[index].appearance)
        scores.append(colour_errors(decoded, regions, region_colours(truth, regions)))
        ious.append(silhouette_iou(decoded, parsing))
    means, counts = mean_by_label(scores)
    for label, value in means.items():
        print(f"ΔE {label}: {value:.1f} ({counts[label]} people)")
    print(f"IoU: {np.mean(ious):.3f}")


if __name__ == "__main__":
    main()
