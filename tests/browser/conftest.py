"""Fixtures for the end-to-end tests: the system Chromium, a real Jupyter server, open notebooks.

Chromium comes from the OS (``apt-get install chromium`` -> /usr/bin/chromium, or set
``HEADWIDGET_CHROMIUM``); these tests never download a browser. Without Chromium they are
skipped, unless ``HEADWIDGET_REQUIRE_BROWSER=1`` (CI), where a missing browser is an error.

Run them with ``pytest -m browser tests/browser``; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import CHROMIUM_ARGS  # noqa: E402
from lab_server import REPO_ROOT  # noqa: E402

CHROMIUM = os.environ.get("HEADWIDGET_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
BUNDLE = REPO_ROOT / "headwidget" / "static" / "widget.js"


def _missing(reason: str) -> None:
    if os.environ.get("HEADWIDGET_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (HEADWIDGET_REQUIRE_BROWSER=1, so this is an error)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` or set HEADWIDGET_CHROMIUM"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        _missing("Python playwright is not installed: pip install playwright")
    return CHROMIUM


@pytest.fixture(scope="session")
def widget_bundle() -> Path:
    if not BUNDLE.is_file():
        pytest.fail(
            f"{BUNDLE.relative_to(REPO_ROOT)} is missing; build the front end first:"
            " cd js && npm ci && npm run build",
            pytrace=False,
        )
    return BUNDLE


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def jupyter_server(
    chromium_path: str, widget_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator:
    """One JupyterLab server (which also serves Notebook 7) for the whole session."""
    from known_scores import (
        SET_THRESHOLD_CELL_SOURCE,
        STATE_CELL_SOURCE,
        examples_cell_source,
        model_cell_source,
        setup_cell_source,
    )
    from lab_server import JupyterServer, write_notebook

    root = tmp_path_factory.mktemp("notebooks")
    cells = [
        setup_cell_source(),
        STATE_CELL_SOURCE,
        SET_THRESHOLD_CELL_SOURCE,
        examples_cell_source(),  # cell 3: per-example effects (the drill-down test)
        model_cell_source(),  # cell 4: a grid holding a tiny model (the attention pattern)
    ]
    # One file per UI: the same path would share one kernel session between the two pages.
    write_notebook(root / "lab.ipynb", cells)
    write_notebook(root / "nb7.ipynb", cells)
    server = JupyterServer.start(root, tmp_path_factory.mktemp("jupyter-home"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab(browser, jupyter_server):
    """lab.ipynb open in JupyterLab with its kernel idle (one kernel for the module)."""
    from notebook_page import notebook_path, open_notebook

    context, nb = open_notebook(
        browser, jupyter_server.url(notebook_path("lab", "lab.ipynb")), "lab"
    )
    yield nb
    context.close()


@pytest.fixture(scope="module")
def notebook7(browser, jupyter_server):
    """nb7.ipynb open in the Notebook 7 UI with its kernel idle."""
    from notebook_page import notebook_path, open_notebook

    context, nb = open_notebook(
        browser,
        jupyter_server.url(notebook_path("notebook", "nb7.ipynb")),
        "notebook",
    )
    yield nb
    context.close()


@pytest.fixture
def lab_widget(lab, request, artifacts):
    """A freshly displayed grid (cell 0 re-run) so that no test sees another test's clicks."""
    lab.dialogs.messages.clear()
    widget = lab.show_widget(0)
    yield widget
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        lab.page.screenshot(path=str(artifacts / f"FAILED-{request.node.name}.png"))
    assert lab.dialogs.messages == [], f"the page raised dialogs: {lab.dialogs.messages}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # keep the call phase's report on the item so that fixtures can screenshot failures
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
