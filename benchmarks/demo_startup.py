"""How long until the quickstart shows the real model's maps: server start → maps on screen.

Starts JupyterLab on a copy of ``notebooks/quickstart.ipynb`` (as ``bash scripts/demo.sh``
does), opens it in headless Chromium, runs its first cell (the shipped cognitive maps) and
waits until the widget has drawn. Prints each stage's time. Uses the browser tests' server and
page helpers (``tests/browser/``); needs Debian's ``chromium``.

    python benchmarks/demo_startup.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lab_server import JupyterServer  # noqa: E402
from notebook_page import NotebookPage  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp, "nb"), Path(tmp, "home")
        root.mkdir()
        home.mkdir()
        shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", root)
        started = time.perf_counter()
        server = JupyterServer.start(root, home)
        up = time.perf_counter()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu"],
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                notebook = NotebookPage(page, "lab")
                notebook.open(server.url("lab/tree/quickstart.ipynb?reset"))
                idle = time.perf_counter()
                first_code = page.locator(".jp-Notebook .jp-Cell").evaluate_all(
                    "cells => cells.findIndex(c => c.classList.contains('jp-CodeCell'))"
                )
                widget = notebook.show_widget(first_code)
                widget.locator("canvas").first.wait_for()
                drawn = time.perf_counter()
                browser.close()
        finally:
            server.stop()
    print(f"server answering:         {up - started:5.1f} s")
    print(f"notebook open, kernel idle: {idle - up:5.1f} s")
    print(f"first cell run, maps drawn: {drawn - idle:5.1f} s")
    print(f"server start → maps on screen: {drawn - started:.1f} s")


if __name__ == "__main__":
    main()
