"""Render the built front end in a bare page, with a fake anywidget model instead of Jupyter.

Used by the fast standalone browser test and by ``benchmarks/widget_redraw.py``. The page imports
``widget.js`` (copied next to it), builds a model that implements the part of the anywidget model
API the contract relies on (get/set/on/off/save_changes/send), and calls the module's
``render({model, el})``. ``window.__model`` exposes the model: ``changes`` (every set from JS),
``saved`` (save_changes calls), ``sent`` (custom messages) and ``fromPython(name, value)``.

>>> with serve_widget(tmp_dir, traits_for(values, tasks)) as url:    # doctest: +SKIP
...     page.goto(url); page.wait_for_function("window.__rendered === true")
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Headless Chromium as the tests and the redraw benchmark start it (Debian build, no sandbox).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC = REPO_ROOT / "headwidget" / "static"

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>headwidget harness</title>
<link rel="stylesheet" href="widget.css">
<style>body { margin: 8px; font-family: sans-serif; }</style>
</head>
<body>
<div id="root"></div>
<script type="module">
class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.listeners = new Map();
    this.changes = [];
    this.saved = 0;
    this.sent = [];
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    this.changes.push([name, value]);
    this._assign(name, value);
  }
  fromPython(name, value) { this._assign(name, value); }
  _assign(name, value) {
    this.state[name] = value;
    this._emit(`change:${name}`, this, value);
    this._emit("change", this);
  }
  on(event, callback) {
    for (const name of String(event).split(/\\s+/)) {
      if (!this.listeners.has(name)) this.listeners.set(name, []);
      this.listeners.get(name).push(callback);
    }
  }
  off(event, callback) {
    if (event === undefined || event === null) { this.listeners.clear(); return; }
    for (const name of String(event).split(/\\s+/)) {
      if (!callback) { this.listeners.delete(name); continue; }
      const kept = (this.listeners.get(name) || []).filter((cb) => cb !== callback);
      this.listeners.set(name, kept);
    }
  }
  _emit(name, ...args) {
    for (const callback of [...(this.listeners.get(name) || [])]) callback(...args);
  }
  save_changes() { this.saved += 1; }
  send(content, callbacks, buffers) { this.sent.push(content); }
}

try {
  const traits = await (await fetch("traits.json")).json();
  const buffer = await (await fetch("values.bin")).arrayBuffer();
  traits.values = new DataView(buffer);
  const binary = ["exact", "sem", "significant", "role_values", "path_data", "path_effect"];
  for (const name of [...binary, "path_sem"]) {
    traits[name] = new DataView(await (await fetch(`${name}.bin`)).arrayBuffer());
  }
  const model = new FakeModel(traits);
  window.__model = model;
  const mod = await import("./widget.js");
  let widget = mod.default ?? mod;
  if (typeof widget === "function") widget = await widget();
  const el = document.getElementById("root");
  if (widget.initialize) await widget.initialize({ model, experimental: {} });
  window.__cleanup = await widget.render({ model, el, experimental: {} });
  window.__rendered = true;
} catch (err) {
  window.__renderError = String(err && err.stack ? err.stack : err);
}
</script>
</body>
</html>
"""


def traits_for(
    values: np.ndarray,
    tasks: Sequence[str],
    categories: dict[str, str | None] | None = None,
    accuracy: dict[str, float] | None = None,
    exact: np.ndarray | None = None,
    *,
    sem: np.ndarray | None = None,
    significant: np.ndarray | None = None,
    reliability: dict[str, float] | None = None,
    roles: Any = None,
    paths: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The synced traits of the BRIEF's widget contract, with the contract's defaults.

    ``values`` goes separately into ``values.bin`` (little-endian float32), ``exact`` (bool,
    the shape of ``values``; None: all exact) into ``exact.bin``, ``sem`` (float, NaN unknown)
    and ``significant`` (uint8 codes: 1 significant, 0 not, 2 untested) into ``sem.bin`` and
    ``significant.bin`` (None: no per-example effects); the page turns them into the DataViews
    the real model would hand over. ``reliability`` goes into the task records. ``roles`` (a
    HeadScores of role maps) goes into ``role_values.bin`` and ``role_info``, its roles shown
    as the grid shows them by default. ``paths`` (a HeadPaths) goes into ``path_data.bin``,
    ``path_effect.bin`` and ``path_sem.bin``.
    """
    values = np.asarray(values, dtype="<f4")
    categories = categories or {}
    accuracy = accuracy or {}
    traits: dict[str, Any] = {
        "shape": list(values.shape),
        "tasks": [
            {
                "name": name,
                "category": categories.get(name),
                "description": "",
                "baseline": None,
                "accuracy": accuracy.get(name),
                "reliability": (reliability or {}).get(name),
                "examples_needed": None,
            }
            for name in tasks
        ],
        "normalization": "share",
        "threshold_mode": "value",
        "threshold": 0.001,
        "top_percent": 5.0,
        "colormap": "viridis",
        "color_range": "shared",
        "vmax": None,
        "vmin": None,
        "orientation": "layer_y",
        "tab": "all",
        "grid_columns": 0,
        "selected_head": None,
        "selected_task": "",
        "progress": {},
        "title": "",
        "exact_only": False,
        "provenance": {},
        "min_accuracy": 0.2,
        "fade_below": False,
        "mark_insignificant": False,
        "min_reliability": 0.7,
        "categories_from": "all",
        "_values": values,
        "_exact": b"" if exact is None else np.asarray(exact, np.uint8).tobytes(),
        "_sem": b"" if sem is None else np.asarray(sem, "<f4").tobytes(),
        "_significant": b"" if significant is None else np.asarray(significant, np.uint8).tobytes(),
        "role_info": {},
        "roles_shown": [],
        "role_threshold": 0.4,
        "role_filter": "",
        "writes": {},
        "_role_values": b"",
        "path_edges": 10,
        "_path_data": b"",
        "_path_effect": b"",
        "_path_sem": b"",
    }
    if roles is not None:
        from headwidget.views import roles as rl

        traits["role_info"] = rl.role_info(roles)
        traits["roles_shown"] = rl.default_shown(roles.tasks)
        traits["_role_values"] = rl.encode_roles(roles)
    if paths is not None:
        from headwidget.views.grid_paths import encode_paths

        encoded = encode_paths(paths, list(tasks))
        traits["_path_data"], traits["_path_effect"], traits["_path_sem"] = encoded
    unknown = set(overrides) - set(traits)
    if unknown:
        raise ValueError(
            f"unknown trait(s) {sorted(unknown)}; the contract's traits: {sorted(traits)}"
        )
    traits.update(overrides)
    return traits


def write_page(directory: Path, traits: dict[str, Any], static: Path = STATIC) -> Path:
    """Write index.html, traits.json, values.bin and a copy of the bundle into ``directory``."""
    bundle = static / "widget.js"
    if not bundle.is_file():
        raise FileNotFoundError(
            f"{bundle} is missing; build the front end first: cd js && npm ci && npm run build"
        )
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle, directory / "widget.js")
    css = static / "widget.css"
    (directory / "widget.css").write_text(css.read_text() if css.is_file() else "")
    traits = dict(traits)
    values = np.ascontiguousarray(traits.pop("_values"), dtype="<f4")
    (directory / "values.bin").write_bytes(values.tobytes())
    for name in (
        "exact",
        "sem",
        "significant",
        "role_values",
        "path_data",
        "path_effect",
        "path_sem",
    ):
        (directory / f"{name}.bin").write_bytes(traits.pop(f"_{name}"))
    # allow_nan: vmax/threshold are finite here; NaN only lives in values.bin.
    (directory / "traits.json").write_text(json.dumps(traits, allow_nan=False))
    (directory / "index.html").write_text(PAGE)
    return directory / "index.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@contextlib.contextmanager
def serve_widget(directory: Path, traits: dict[str, Any]) -> Iterator[str]:
    """Serve the harness page from ``directory`` on 127.0.0.1; yields its URL."""
    write_page(directory, traits)
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_rendered(page: Any, timeout_ms: int = 30_000) -> None:
    """Wait until render() returned and the root says it drew; raise the page's error if any."""
    page.wait_for_function(
        "window.__rendered === true || window.__renderError !== undefined", timeout=timeout_ms
    )
    error = page.evaluate("window.__renderError")
    if error:
        raise RuntimeError(f"the widget failed to render: {error}")
    page.wait_for_selector('.headwidget[data-ready="true"]', timeout=timeout_ms)
