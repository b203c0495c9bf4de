#!/usr/bin/env bash
# The headwidget demo, from a fresh checkout: sets up .venv, scores a small locally built model
# on the built-in "operations" suite (no download from any model hub), prints the most important
# heads per task and writes demo-output/scores.npz and demo-output/heads.png.
# `bash scripts/demo.sh lab` then opens the interactive grid in JupyterLab.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-env.sh test
python scripts/demo.py --out demo-output
if [ "${1:-}" = "lab" ]; then
    exec python -m jupyter lab notebooks/quickstart.ipynb
fi
