#!/usr/bin/env bash
# Set up and run every test: a virtual environment with the requirements, Debian's chromium for the
# browser test (installed when missing and we may), the package itself (editable), ruff, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
.venv/bin/pip install -q --no-deps -r requirements-pose.txt
.venv/bin/pip install -q --no-deps -e .
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
