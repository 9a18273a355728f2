"""The Parts2Whole demo: `python app.py [--weights DIR] [--host H] [--port P] [--share] [--device D] [--dtype T] [--low-vram]`."""

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from parts2whole.runtime import add_model_arguments, check_device, default_device, parse_dtype
from parts2whole.weights import SOURCES, download
from ui import settings
from ui.examples import load_examples, load_poses
from ui.handlers import Handlers
from ui.layout import CSS, build_demo
from ui.models import Models
from ui.outputs import is_returnable, remove_all_runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve the network (default: %(default)s)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
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
    if not is_returnable(settings.OUTPUT_DIR):
        print(
            f"error: P2W_OUTPUT_DIR={settings.OUTPUT_DIR} must lie in the working directory ({Path.cwd()}) or the temporary "
            f"directory ({tempfile.gettempdir()}): Gradio returns files from there only.",
            file=sys.stderr,
        )
        return 2
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
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stopped service shuts down like Ctrl-C: outputs removed
    demo.queue(default_concurrency_limit=settings.GENERATION_CONCURRENCY)
    try:  # the outputs are not served by path (ui/outputs.py): no allowed_paths
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS)
    finally:
        if settings.OUTPUT_MAX_AGE > 0:
            remove_all_runs(settings.OUTPUT_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
