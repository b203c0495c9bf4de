"""Draw the README's picture of head roles on the map, docs/roles.png: the demo model's shipped
operations maps (``load_demo_scores("operations")``) in the Categories view with the heads' role
glyphs from :func:`headwidget.detect_heads` on the demo model, and one induction head hovered, so
that the tooltip lists its roles.

The roles are detected here (about 30 s on this project's 2-core machine; ``--roles saved.npz``
reuses saved ones, ``--save-roles`` keeps them). The README's caption of the picture — examples
per task of the maps shown, the roles' settings — sits between ``<!-- roles-picture:start -->``
and ``<!-- roles-picture:end -->`` and is rewritten with the picture, so that re-running the
script after the shipped maps are recomputed keeps both in step. Headless Chromium (Debian's
``chromium`` through Playwright), as scripts/view_pictures.py:

    python scripts/roles_picture.py                          # docs/roles.png + README caption
    python scripts/roles_picture.py --roles roles.npz --out /tmp/roles.png --no-readme
"""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path
from typing import Any

from grid_page import CHROMIUM, chromium, screenshot_hovered

from headwidget import HeadImportanceGrid, HeadScores
from headwidget.demo import load_demo_scores
from headwidget.views.roles import ROLE_THRESHOLD, default_shown

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- roles-picture:start -->", "<!-- roles-picture:end -->"


def detect_roles() -> HeadScores:
    """detect_heads on the demo model at its defaults."""
    from headwidget import detect_heads
    from headwidget.demo import load_demo_model

    model, tokenizer = load_demo_model()
    return detect_heads(model, tokenizer, progress=False)


def caption(scores: HeadScores, roles: HeadScores, shown: list[str], threshold: float) -> str:
    """The README's caption: what the picture shows and from what."""
    examples = sorted(set((scores.meta.get("examples") or {}).values()))
    n = "–".join(str(e) for e in (examples[:1] + examples[-1:] if len(examples) > 1 else examples))
    meta = roles.meta
    sequences = meta.get("n_sequences") or {}
    lengths = meta.get("seq_len") or {}
    settings = ", ".join(
        f"{sequences[kind]} {kind} sequences of {lengths.get(kind, '?')} tokens"
        for kind in sorted(sequences)
    )
    hidden = [name for name in roles.tasks if name not in shown]
    found = [r for r in scores.reliability().values() if r == r]  # the maps' split-half r
    sure = f", split-half reliability {min(found):.2f}–{max(found):.2f}" if found else ""
    return (
        f"The Categories view of the demo model's shipped operations maps (n = {n or '?'}"
        f" examples per task, {scores.method}{sure}) with the heads' roles from"
        f" `detect_heads(model, tokenizer)` at its defaults ({settings}, seed"
        f' {meta.get("seed")}, `error_measure="{meta.get("error_measure")}"`,'
        f' `rows="{meta.get("rows")}"`): a glyph marks each head whose attention share on'
        f" a role's pattern is at least {threshold:g} (`role_threshold`), for"
        f" {', '.join(shown)}"
        + (f" ({', '.join(hidden)} not shown: `roles_shown` default)" if hidden else "")
        + "; an induction head hovered. Redrawn by `python scripts/roles_picture.py`."
    )


def write_caption(text: str, readme: Path = README) -> None:
    """Put ``text`` between the markers of ``readme``."""
    body = readme.read_text(encoding="utf-8")
    marked = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not marked.search(body):
        raise SystemExit(f"{readme} has no {START} ... {END} block for the caption")
    wrapped = textwrap.fill(text, 99, break_on_hyphens=False)
    readme.write_text(marked.sub(lambda _: f"{START}\n{wrapped}\n{END}", body), encoding="utf-8")


def draw(browser: Any, grid: HeadImportanceGrid, head: tuple[int, int], out: Path) -> str:
    """Screenshot the grid's Categories view with ``head`` hovered in "All Categories"; returns
    the tooltip's text."""
    return screenshot_hovered(browser, grid, out, "All Categories", head, width=1100, height=900)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "roles.png")
    parser.add_argument("--roles", type=Path, help="saved detect_heads maps (default: detect)")
    parser.add_argument("--save-roles", type=Path, help="keep the detected maps here")
    parser.add_argument("--threshold", type=float, default=ROLE_THRESHOLD)
    parser.add_argument("--no-readme", action="store_true", help="leave the README's caption")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    scores = load_demo_scores("operations")
    roles = HeadScores.load(args.roles) if args.roles else detect_roles()
    if args.save_roles:
        roles.save(args.save_roles)
    shown = default_shown(roles.tasks)
    grid = HeadImportanceGrid(scores, roles=roles, tab="categories", role_threshold=args.threshold)
    layer, head, _ = roles.top_heads("induction", 1)[0]
    with chromium(args.chromium) as browser:
        text = draw(browser, grid, (layer, head), args.out)
    line = caption(scores, roles, shown, args.threshold)
    if not args.no_readme:
        write_caption(line)
    print(f"saved {args.out}; the tooltip reads: {' | '.join(text.splitlines())}\n{line}")


if __name__ == "__main__":
    main()
