"""Fetch the weights the project uses into pretrained_weights/ (see parts2whole/weights.py)."""

import argparse
import sys

from parts2whole.weights import DEFAULT_WEIGHTS_DIR, SOURCES, download


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(SOURCES), help="fetch just this one")
    parser.add_argument("--dir", default=str(DEFAULT_WEIGHTS_DIR), help="where to put them (default: %(default)s)")
    args = parser.parse_args()
    names = [args.only] if args.only else list(SOURCES)
    failed = []
    for name in names:
        print(f"Fetching {name}: {SOURCES[name].description} ...", flush=True)
        try:
            print(f"  -> {download(name, args.dir)}", flush=True)
        except Exception as error:  # network, disk, permissions: report and go on with the others
            print(f"  failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            failed.append(name)
    if failed:
        print(f"Could not fetch: {', '.join(failed)}. Run the same command again to resume.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
