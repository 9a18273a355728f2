#!/usr/bin/env bash
# Train the mini model on a lent GPU machine in one call (docs/training.md): the synthetic people
# are made there, then the VAE stages, the main stage, the export and the evaluation run; what
# must come back is written to $OUT (the model folder as a tarball, the logs, the evaluation).
#
#   here, once: echo /.whl/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl diffusers
#   device run (carry .whl): bash scripts/train_mini_gpu.sh [KEY=VALUE ...]   (train.py overrides)
#
# PEOPLE (default 6000) sets the data's size. Untested on a GPU so far: prepared for the next session
# that is lent one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
OUT="${OUT:-runs/gpu-out}"
RUN=/tmp/mini-run
DATA=/tmp/synthetic
mkdir -p "$OUT"
python3 -m parts2whole.synthetic --out "$DATA" --people "${PEOPLE:-6000}" --seed 1 --size 96x128 --workers "$(nproc)" 2>&1 | tail -1 | tee "$OUT/data.log"
python3 train.py --config configs/mini.yaml data="$DATA" output_dir="$RUN" num_workers=8 "$@" 2>&1 | tr '\r' '\n' | grep -v '^training\|^vae' | tee "$OUT/train.log"
python3 -m parts2whole.evaluate --weights "$RUN/final" --data "$DATA" --limit 100 --out "$OUT/eval" 2>&1 | tail -30 | tee "$OUT/eval.log"
tar czf "$OUT/mini.tgz" -C "$RUN" final config.json $(cd "$RUN" && ls ./*log.csv)
