"""`python -m parts2whole.synthetic --out DIR --people N --seed S`: write a synthetic dataset."""

import argparse
import os
import sys

from .dataset import write_dataset


def size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, e.g. 512x768."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 512x768") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"{text!r} is too small: at least 8x8")
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parts2whole.synthetic", description=__doc__)
    parser.add_argument("--out", required=True, help="a new or empty folder")
    parser.add_argument("--people", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=size, default=(512, 768), help="targets' WIDTHxHEIGHT (default 512x768)")
    parser.add_argument("--reference-side", type=int, default=None, help="references' long side (default: the targets' short side)")
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1, help=f"processes (this machine has {os.cpu_count()} CPUs)")
    args = parser.parse_args(argv)
    if args.people < 1:
        parser.error("--people must be at least 1")
    if not 0.0 <= args.test_fraction < 1.0:
        parser.error("--test-fraction must be in [0, 1)")
    try:
        rate = write_dataset(args.out, args.people, args.seed, args.size, args.reference_side, args.test_fraction, args.workers)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.people} people written to {args.out}: {rate:.1f} people per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
