#!/usr/bin/env bash
# Create .venv and install padream with its test and report extras. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch/torchvision pinned to the builds this project is tested with (they install from a local
# wheel cache where one exists); any torch >= 2.1 works.
.venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
