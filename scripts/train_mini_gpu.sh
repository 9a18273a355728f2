#!/usr/bin/env bash
# Train the mini model on a lent GPU machine in one call (docs/training.md): the synthetic people are
# made there unless DATA already holds a dataset, then train.py runs (VAE stage, main stage, export);
# what must come back lands in $OUT: the run (final model, config, logs) as a tarball split in parts
# of 15 MB (the device tool returns files of at most 16 MB), and train.log.
#
#   here, once: echo /.whl/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl diffusers
#   device run (carry .whl): bash scripts/train_mini_gpu.sh [KEY=VALUE ...]   (train.py overrides)
#   back here:  cat mini.tgz.part-* | tar xzf - -C runs/NAME
#
# DATA (default /tmp/synthetic), PEOPLE (default 6000), DATA_SEED (default 1) and SIZE (width x height,
# default 96x128; train with the matching height= and width=) set the data made there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c 'import diffusers' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-runs/gpu-out}"
RUN=/tmp/mini-run
DATA="${DATA:-/tmp/synthetic}"
mkdir -p "$OUT"
if [ ! -f "$DATA/train.jsonl" ]; then
  python3 -m parts2whole.synthetic --out "$DATA" --people "${PEOPLE:-6000}" --seed "${DATA_SEED:-1}" \
    --size "${SIZE:-96x128}" --workers "$(nproc)" 2>&1 | tail -1 | tee "$OUT/data.log"
fi
python3 train.py --config configs/mini.yaml data="$DATA" output_dir="$RUN" num_workers="$(( $(nproc) > 5 ? $(nproc) - 4 : 1 ))" "$@" 2>&1 \
  | tr '\r' '\n' | grep --line-buffered -v '^training\|^vae' | tee "$OUT/train.log"
(cd "$RUN" && tar czf - final config.json ./*log.csv) | split -b 15M - "$OUT/mini.tgz.part-"
ls -l "$OUT"
