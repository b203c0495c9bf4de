"""The widget's front end: the esbuild bundle in ``headwidget/static/``, attached on first use;
and the script of the page ``grid.save("x.html")`` writes (``js/src/page.ts``).

>>> ESM_PATH.name, CSS_PATH.name, PAGE_PATH.name
('widget.js', 'widget.css', 'page.js')
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLE_DIR", "CSS_PATH", "ESM_PATH", "PAGE_PATH", "ensure_bundle", "read_bundle"]

BUNDLE_DIR = Path(__file__).parent.parent / "static"
ESM_PATH = BUNDLE_DIR / "widget.js"
CSS_PATH = BUNDLE_DIR / "widget.css"
PAGE_PATH = BUNDLE_DIR / "page.js"


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
    # the bundle's text (anywidget turns a Path into text only for class attributes it sees when
    # the class is created, and this runs later)
    cls._esm = read_bundle(ESM_PATH)
    if CSS_PATH.is_file():
        cls._css = CSS_PATH.read_text(encoding="utf-8")


def read_bundle(path: Path) -> str:
    """The text of a built bundle (:data:`ESM_PATH`, :data:`PAGE_PATH`), or a
    ``FileNotFoundError`` that says how to build it."""
    if not path.is_file():
        raise _bundle_missing_error(path)
    return path.read_text(encoding="utf-8")
