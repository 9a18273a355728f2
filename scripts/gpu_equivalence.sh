#!/usr/bin/env bash
# The fast-vs-plain check on a lent GPU, with run-to-run noise beside it, with and without TF32.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name --format=csv,noheader
python3 bench/fast_vs_plain.py --device cuda --dtype float32
python3 bench/fast_vs_plain.py --device cuda --dtype float32 --no-tf32
python3 bench/fast_vs_plain.py --device cuda --dtype float16
