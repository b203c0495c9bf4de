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
