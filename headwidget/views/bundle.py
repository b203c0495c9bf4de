"""The widget's front end: the esbuild bundle in ``headwidget/static/``, attached on first use.

>>> ESM_PATH.name, CSS_PATH.name
('widget.js', 'widget.css')
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLE_DIR", "CSS_PATH", "ESM_PATH", "ensure_bundle"]

BUNDLE_DIR = Path(__file__).parent.parent / "static"
ESM_PATH = BUNDLE_DIR / "widget.js"
CSS_PATH = BUNDLE_DIR / "widget.css"


def _bundle_missing_error(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"the widget's JavaScript bundle {path} is missing. In a source checkout build it with"
        " `cd js && npm ci && npm run build`; otherwise reinstall the package"
        " (`pip install --force-reinstall headwidget`)."
    )


def ensure_bundle(cls: type) -> None:
    """Attach the built front end to the class on first use.

    Not done at import time: a source checkout without a build can still import headwidget,
    read scores and plot; only showing the widget needs the bundle.
    """
    if "_esm" in cls.__dict__:
        return
    if not ESM_PATH.is_file():
        raise _bundle_missing_error(ESM_PATH)
    # the bundle's text (anywidget turns a Path into text only for class attributes it sees when
    # the class is created, and this runs later)
    cls._esm = ESM_PATH.read_text(encoding="utf-8")
    if CSS_PATH.is_file():
        cls._css = CSS_PATH.read_text(encoding="utf-8")
