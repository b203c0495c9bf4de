#!/usr/bin/env bash
# Runs every check headwidget has: lint, the front end's type check and unit tests, and the
# Python tests, including end-to-end tests that drive JupyterLab and Notebook 7 in headless
# Chromium. Sets up everything it needs itself (a fresh machine only needs python3, node/npm).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-env.sh test

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "note: Debian's chromium is not installed; the browser tests will be skipped" >&2
    fi
fi

echo "== lint"
ruff check .
ruff format --check .
echo "== front end: type check and unit tests"
(cd js && npm run --silent typecheck && npm test --silent)
echo "== python tests"
python -m pytest "$@"

# The engine replays recorded decoder-layer calls, whose arguments changed between transformers
# 4.5x and 5.x: run its tests against the last 4.x release too, in a venv of its own.
echo "== engine and attribution tests under transformers 4.57"
if [ ! -x .venv-tf4/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv-tf4
fi
.venv-tf4/bin/python -m pip install -q --upgrade pip
.venv-tf4/bin/python -c "import torch" 2>/dev/null ||
    .venv-tf4/bin/python -m pip install -q ${HEADWIDGET_TORCH:-torch==2.13.0}  # may hold several pip arguments
.venv-tf4/bin/python -m pip install -q "transformers==4.57.*" numpy tqdm pytest
PYTHONPATH=. .venv-tf4/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_engine_exact.py tests/test_engine_api.py tests/test_attribution.py \
    tests/test_detect_layout.py tests/test_model_session.py tests/test_model_inputs.py

# detect_heads against TransformerLens's head detector, in a venv of its own (opt-in: building
# it takes minutes; tests/test_roles.py runs the same check whenever .venv-tl exists).
if [ "${HEADWIDGET_CHECK_TL:-0}" = 1 ]; then
    echo "== detect_heads against TransformerLens 4.3"
    if [ ! -x .venv-tl/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv-tl
    fi
    .venv-tl/bin/python -c "import transformer_lens" 2>/dev/null ||
        .venv-tl/bin/python -m pip install -q ${HEADWIDGET_TORCH:-torch==2.13.0} "transformer_lens==4.3.0"
    PYTHONPATH=. .venv-tl/bin/python scripts/check_roles_against_transformerlens.py
fi
