"""Train Parts2Whole (docs/method.md §6; docs/training.md).

    python train.py --config configs/mini.yaml [--resume latest] [KEY=VALUE ...]
    python train.py --config configs/mini.yaml --vae-only          # the VAE stages alone
    accelerate launch train.py --config configs/released.yaml    # one or many GPUs / machines
"""

import argparse
import sys

from parts2whole.training.config import TrainConfig
from parts2whole.training.loop import make_accelerator, train, train_vae


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a YAML file of settings (parts2whole/training/config.py lists them)")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder")
    parser.add_argument("--vae-only", action="store_true", help="run the VAE stages only (a model from scratch)")
    parser.add_argument("overrides", nargs="*", help="settings that replace the file's, e.g. max_steps=100")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.load(args.config, args.overrides)
    except (OSError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.vae_only:
        train_vae(config, make_accelerator(config))
        print(f"The VAE is in {config.output_dir}.")
        return 0
    final = train(config, args.resume)
    print(f"The model is in {final} (the released layout: Parts2WholePipeline.from_pretrained loads it).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
