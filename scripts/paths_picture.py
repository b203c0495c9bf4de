"""Draw the README's picture of paths between heads on the map, docs/paths.png: the demo model's
shipped operations map of one task (``load_demo_scores("operations")``, its own tab) with the
arrows of :func:`headwidget.trace_paths` among its top heads (exact path patching, mean
ablation, log-probability, q / k / v and the logits) on ``--examples`` examples of the task
(the picture's caption must say that n), each task's ``--edges`` strongest drawn.

``--paths saved.npz`` reuses saved paths, ``--save-paths`` keeps them. Headless Chromium
(Debian's ``chromium`` through Playwright), as scripts/roles_picture.py:

    python scripts/paths_picture.py                          # docs/paths.png (n = 8, copying)
    python scripts/paths_picture.py --task "next year" --out /tmp/paths.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grid_page import CHROMIUM, chromium, screenshot_grid

from headwidget import HeadImportanceGrid, HeadPaths, load_suite, trace_paths
from headwidget.demo import load_demo_scores

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="copying")
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--top", type=int, default=8, help="heads traced per task (8)")
    parser.add_argument("--edges", type=int, default=10, help="edges drawn (10)")
    parser.add_argument("--paths", type=Path, help="saved paths instead of tracing")
    parser.add_argument("--save-paths", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "paths.png")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    scores = load_demo_scores("operations")
    if args.paths:
        paths = HeadPaths.load(args.paths)
    else:
        from headwidget.demo import load_demo_model

        model, tokenizer = load_demo_model()
        suite = load_suite("operations", max_examples=args.examples)
        tasks = [t for t in suite if t.name == args.task]
        paths = trace_paths(model, tokenizer, tasks, scores=scores, top=args.top, progress=False)
        if args.save_paths:
            paths.save(args.save_paths)
    n = {name: effects.shape[1] for name, effects in paths.effects.items()}
    grid = HeadImportanceGrid(scores, paths=paths, path_edges=args.edges, tab=f"task:{args.task}")
    with chromium(args.chromium) as browser:
        screenshot_grid(browser, grid, args.out, width=900, height=1000, settle_ms=300)
    print(f"wrote {args.out}: {args.task}, paths on n = {n.get(args.task)} examples,"
          f" {len(paths.task_rows(args.task))} edges among its top {args.top} heads,"
          f" the {args.edges} strongest drawn; its map on n ="
          f" {len(scores.examples.get(args.task, []))} examples")  # fmt: skip


if __name__ == "__main__":
    main()
