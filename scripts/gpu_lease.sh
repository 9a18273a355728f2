#!/usr/bin/env bash
# The next lent GPU's one call for issues 10 and 11 (about 9 min; docs/PERFORMANCE.md, docs/mini_model.md):
# bench/compare.py first, on the still idle machine (3 interleaved rounds, channels-last on and off, the
# step taken apart by --breakdown; the placements were measured on 2026-11-28), then the mini model:
# the shipped pretrained_weights/parts2whole-mini (run 21) trained further at its 256 x 192 on 2000
# people of seed 2 made there (about 2 min on 16 cores), with its loss weights, at batch 128
# until max_steps or max_minutes (2, which keeps the call under 10 min).
# Everything lands in $OUT (7 files).
#
#   here, once: echo /.whl/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl diffusers
#   device run (carry .whl, timeout_s 600): bash scripts/gpu_lease.sh [KEY=VALUE ...]   (train.py overrides)
set -uo pipefail
cd "$(dirname "$0")/.."
timeout 260 bash scripts/gpu_compare.sh --channels-last --breakdown
DATA_SEED=2 PEOPLE=2000 SIZE=192x256 bash scripts/train_mini_gpu.sh pretrained=pretrained_weights/parts2whole-mini \
  height=256 width=192 vae_steps=0 batch_size=128 \
  learning_rate=3.0e-4 lr_scheduler=cosine lr_warmup_steps=50 max_steps=600 max_minutes=2 validate_every=0 \
  high_noise_portion=0.5 high_noise_multiplier=3 checkpoint_every=200 log_every=10 \
  "loss_weights={background: 1, skin or other: 3, upper body clothes: 3, lower body clothes: 3, whole body clothes: 5, hair or headwear: 80, face: 160, shoes: 80}" \
  "$@"
