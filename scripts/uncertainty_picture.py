"""Draw the README's picture of how sure each map is, docs/uncertainty.png: the demo model's
shipped operations maps (``load_demo_scores("operations")``) in the All tasks view with the cells
that are not significant striped, each title's split-half reliability (noisy maps marked) and one
head hovered, so that the tooltip shows its value ± 95 % interval.

The shipped maps need per-example effects for this (they are being recomputed with them); until
then the script says so and stops. ``--synthetic`` draws the same picture from made-up scores
with effects, to try the script; it never writes under docs/ (a picture of synthetic data is not
the README's picture). Headless Chromium (Debian's ``chromium`` through Playwright), as
scripts/view_pictures.py:

    python scripts/uncertainty_picture.py                       # docs/uncertainty.png
    python scripts/uncertainty_picture.py --synthetic --out /tmp/uncertainty.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from grid_page import CHROMIUM, chromium, screenshot_hovered

from headwidget import HeadImportanceGrid, HeadScores
from headwidget.demo import load_demo_scores

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def synthetic_scores(seed: int = 0) -> HeadScores:
    """Made-up scores with per-example effects, shaped like the demo model's operations maps
    (30 layers x 9 heads, 24 examples per task): a few heads with an effect on a heavy-tailed
    floor; two tasks carry almost no effect, so their maps are noisy."""
    rng = np.random.default_rng(seed)
    shape, n = (30, 9), 24
    names = ["copying", "country → capital", "antonym", "plural", "counting", "rhyme"]
    categories = ["Algorithmic", "Knowledge", "Linguistic", "Linguistic", "Algorithmic", None]
    effects = {}
    for t, name in enumerate(names):
        true = np.zeros(shape)
        if t < 4:  # counting and rhyme: noise only
            hot = rng.choice(true.size, 8, replace=False)
            true.ravel()[hot] = rng.gamma(2.0, 0.4, hot.size)
        noise = rng.standard_t(3, (*shape, n)) * 0.25
        effects[name] = (true[..., None] + noise).astype(np.float32)
    values = np.stack([effects[name].mean(-1) for name in names]).astype(np.float32)
    return HeadScores(
        values,
        names,
        categories=dict(zip(names, categories, strict=True)),
        accuracy=dict(zip(names, [0.96, 0.9, 0.71, 0.88, 0.42, 0.15], strict=True)),
        meta={"model": "synthetic (not the demo model)", "metric": "logprob", "examples": {}},
        effects=effects,
    )


def check_effects(scores: HeadScores) -> None:
    """Stop with a message when ``scores`` keep no per-example effects."""
    if not scores.effects:
        raise SystemExit(
            "these scores keep no per-example effects, so there is no interval, reliability or"
            " significance to show; the shipped demo maps are being recomputed with them"
            " (score_heads(keep_examples=True)). Try the script with --synthetic."
        )


def hovered_head(scores: HeadScores, task: str | None) -> tuple[str, int, int]:
    """The head the picture hovers: ``task``'s (default: the first task's) most important."""
    task = task or scores.tasks[0]
    layer, head, _ = scores.top_heads(task, 1)[0]
    return task, layer, head


def draw(
    browser: Any, scores: HeadScores, out: Path, *, task: str | None = None, width: int = 1100
) -> str:
    """Screenshot the grid of ``scores`` (stripes on, a head hovered) into ``out``; returns the
    tooltip's text."""
    check_effects(scores)
    grid = HeadImportanceGrid(scores, mark_insignificant=True)
    panel, layer, head = hovered_head(scores, task)
    return screenshot_hovered(browser, grid, out, panel, (layer, head), width=width, height=1000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="default: docs/uncertainty.png")
    parser.add_argument("--synthetic", action="store_true", help="made-up scores, to try it")
    parser.add_argument("--task", help="the task whose top head is hovered (default: the first)")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    out = args.out or (
        Path("uncertainty-synthetic.png") if args.synthetic else DOCS / "uncertainty.png"
    )
    if args.synthetic and out.resolve().is_relative_to(DOCS):
        parser.error("a picture of synthetic scores does not go into docs/; give --out elsewhere")
    scores = synthetic_scores() if args.synthetic else load_demo_scores("operations")
    check_effects(scores)
    with chromium(args.chromium) as browser:
        text = draw(browser, scores, out, task=args.task, width=args.width)
    print(f"saved {out}; the tooltip reads: {' | '.join(text.splitlines())}")


if __name__ == "__main__":
    main()
