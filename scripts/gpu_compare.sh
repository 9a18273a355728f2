#!/usr/bin/env bash
# Issue 11's measurements on a lent GPU machine in one call (docs/PERFORMANCE.md): bench/compare.py
# at 768 x 512, 50 DDIM steps, float16, for 1, 2 and 6 parts (3 rounds each, channels-last on and
# off) with the placements' memory rows;
# the JSON and the console output land in $OUT.
#
#   here, once: echo /.whl/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl diffusers
#   device run (carry .whl): bash scripts/gpu_compare.sh [compare.py options; default --channels-last --memory]
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c 'import diffusers' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-runs/gpu-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
options=("$@")
[ ${#options[@]} -eq 0 ] && options=(--channels-last --memory)
python3 bench/compare.py --device cuda --dtype float16 --steps 50 "${options[@]}" --out "$OUT/compare.json" 2>&1 | tee "$OUT/compare.log"
