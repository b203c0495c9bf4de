#!/usr/bin/env bash
# The headwidget demo, from a fresh checkout (sets up .venv first). Everything runs offline on the
# demo model that ships in the package (a small Llama trained on the built-in suites).
#   bash scripts/demo.sh            JupyterLab on notebooks/quickstart.ipynb: the live grid
#   bash scripts/demo.sh headless   no Jupyter: score both suites, print the top heads, write
#                                   demo-output/ (scores .npz, PNGs, validation.md)
#   bash scripts/demo.sh docs       headless, then redraw the README's pictures in docs/ from it
#                                   (the widget screenshotted in headless Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-env.sh test
case "${1:-lab}" in
    lab)
        # Jupyter refuses to run as root (containers) unless told it may
        extra=()
        if [ "$(id -u)" = 0 ]; then extra=(--allow-root); fi
        exec python -m jupyter lab "${extra[@]}" notebooks/quickstart.ipynb ;;
    headless)
        python scripts/demo.py --out demo-output ;;
    docs)
        python scripts/demo.py --out demo-output
        python scripts/readme_picture.py demo-output/operations.npz --tab categories --out docs/grid.png
        python scripts/readme_picture.py demo-output/cognitive.npz --tab all --out docs/cognitive.png
        cp demo-output/validation.md docs/validation.md ;;
    *)
        echo "usage: bash scripts/demo.sh [lab|headless|docs]" >&2
        exit 2 ;;
esac
