"""The Parts2Whole demo: `python app.py [--weights DIR] [--host H] [--port P] [--share] [--device D] [--dtype T] [--low-vram]`."""

import argparse
import os
import sys

from parts2whole.runtime import check_device, default_device, parse_dtype
from parts2whole.weights import DEFAULT_WEIGHTS_DIR, SOURCES, download
from ui import settings
from ui.examples import load_examples, load_poses
from ui.handlers import Handlers
from ui.layout import CSS, build_demo
from ui.models import Models


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS_DIR), help="weights folder (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve the network (default: %(default)s)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"], help="default: float16 on GPU")
    parser.add_argument("--low-vram", action="store_true", help="keep each model on the CPU until it runs")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    device = args.device or default_device()
    try:
        check_device(device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.low_vram and settings.GENERATION_CONCURRENCY > 1:  # offload moves the models all calls share
        print("--low-vram: generations run one at a time (P2W_GENERATION_CONCURRENCY is ignored).", file=sys.stderr)
        settings.GENERATION_CONCURRENCY = 1
    models = Models(args.weights, device, parse_dtype(args.dtype, device), args.low_vram)
    if os.environ.get("SPACE_ID"):  # on a Hugging Face Space: fetch what is missing, load before the first visitor
        for name in SOURCES:
            try:
                download(name, args.weights)
            except Exception as error:  # the demo still starts and says what it cannot do
                print(f"Could not fetch {name}: {error}", file=sys.stderr)
        models.preload()
    for line in models.status():
        print(line, file=sys.stderr)
    demo = build_demo(Handlers(models, load_examples(defaults=models.defaults()), load_poses()))
    demo.queue(default_concurrency_limit=settings.GENERATION_CONCURRENCY)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS, allowed_paths=[str(settings.OUTPUT_DIR.resolve())])
    return 0


if __name__ == "__main__":
    sys.exit(main())
