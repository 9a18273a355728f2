#!/usr/bin/env bash
# One run on a lent GPU machine (see docs/gpu-check.md): GPU equivalence of the fast path, the
# attention benchmark at 768x512, whole-pipeline speed and memory, and the CLI on CUDA.
# Needs the diffusers wheel carried in .whl/ (the machine has torch and transformers).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
log() { echo; echo "### $*"; date -u +%H:%M:%S; }
log machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
log "fast vs plain, cuda float32" && python3 bench/fast_vs_plain.py --device cuda --dtype float32
log "fast vs plain, cuda float16" && python3 bench/fast_vs_plain.py --device cuda --dtype float16
log "attention cost, no masks" && python3 bench/attention_cost.py --time --device cuda --dtype float16 --repeats 10 --kept 1.0
log "attention cost, masks keep half" && python3 bench/attention_cost.py --time --device cuda --dtype float16 --repeats 10 --kept 0.5
log "whole pipeline" && python3 bench/full_size.py --device cuda --dtype float16 --steps 50
log "whole pipeline, model CPU offload" && python3 bench/full_size.py --device cuda --dtype float16 --steps 50 --offload
log "CLI on cuda with tiny weights"
python3 - <<'PY'
from pathlib import Path
from parts2whole.testing.tiny_models import write_released_checkpoint
write_released_checkpoint(Path("/tmp/tiny/parts2whole"))
PY
python3 -m parts2whole examples/top_and_trousers/example.json --out /tmp/cli --weights /tmp/tiny --device cuda 2>&1 | grep -v "Loading weights"
python3 -m parts2whole examples/dress/example.json --out /tmp/cli --weights /tmp/tiny --device cuda --low-vram 2>&1 | grep -v "Loading weights"
ls -la /tmp/cli
log done
