# Sourced by scripts/test.sh and scripts/demo.sh: creates .venv and installs headwidget into it.
# Torch is installed first and pinned to a CPU-friendly release unless one is already present,
# because a bare "torch" requirement can pull a multi-GB CUDA build. Override with
# HEADWIDGET_TORCH="torch==X.Y" (or pre-install the build you want into .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "${HEADWIDGET_TORCH:-torch==2.13.0}"
# The front end is bundled by esbuild into headwidget/static/ (the package build does the same).
(cd js && npm install --no-audit --no-fund --loglevel=error && npm run --silent build)
python -m pip install -q -e ".[$1]"
