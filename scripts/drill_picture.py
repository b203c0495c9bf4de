"""Draw docs/drilldown.png: the per-example drill-down of one head of the real demo model.

Scores two operations tasks (a few examples each) on SmolLM2-135M-Instruct live, with
per-example effects, saves the grid as a standalone page and opens it in headless Chromium
(Debian's ``chromium`` through Playwright). The page has no kernel, so its stand-in model's
``send`` is routed to Python, where :func:`headwidget.views.drill.handle_message` answers exactly as
the widget does in Jupyter (the top examples, then the attention pattern on the top example).

    python scripts/drill_picture.py --out docs/drilldown.png
"""

from __future__ import annotations

import argparse
import base64
import re
from pathlib import Path
from typing import Any

from grid_page import CHROMIUM, chromium, screenshot_grid

from headwidget import HeadImportanceGrid, load_suite, score_heads
from headwidget.demo import load_demo_model
from headwidget.views.drill import handle_message

# the page's stand-in model: send() asks Python and emits the reply as "msg:custom"
_SEND = """send(msg) {
    window.hwSend(msg).then(([reply, buffers]) => this.emit("msg:custom", reply,
      buffers.map((b) => new DataView(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)).buffer))));
  }"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/drilldown.png"))
    parser.add_argument("--tasks", nargs="+", default=["copying", "name copying"])
    parser.add_argument("--examples", type=int, default=12, help="examples per task")
    parser.add_argument("--head", type=int, nargs=2, default=[0, 2], help="layer head")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()

    model, tokenizer = load_demo_model()
    tasks = load_suite("operations", tasks=args.tasks, max_examples=args.examples)
    scores = score_heads(model, tokenizer, tasks, progress=False)
    layer, head = args.head
    grid = HeadImportanceGrid(
        scores, selected_head=(layer, head), selected_task=args.tasks[0], tab="all"
    )

    def send(msg: dict) -> list:
        reply, buffers = handle_message(scores, (model, tokenizer, None), msg) or ({}, [])
        return [reply, [base64.b64encode(b).decode() for b in buffers]]

    def route_send(html: str) -> str:
        # the page's model (js/src/page.ts, bundled into the page) has an empty send()
        routed, n = re.subn(r"  send\(\) \{\s*\}", lambda _: "  " + _SEND, html, count=1)
        if n != 1:
            raise RuntimeError("the saved page's model has no empty send() to route")
        return routed

    def attention_on_the_top_example(page: Any) -> None:
        examples = page.locator(".hw-examples")
        examples.locator("tbody tr").first.wait_for(timeout=60_000)
        examples.locator(".hw-attn-button").click()
        examples.locator("canvas.hw-attn-canvas").wait_for(timeout=60_000)

    with chromium(args.chromium) as browser:
        screenshot_grid(
            browser, grid, args.out, width=900, edit_html=route_send,
            before_open=lambda page: page.expose_function("hwSend", send),
            act=attention_on_the_top_example,
        )  # fmt: skip
    reliability = scores.reliability()
    print(f"saved {args.out}: " + "; ".join(
        f"{t}: n = {scores.meta['examples'][t]}, split-half reliability {reliability[t]:.2f}"
        for t in scores.tasks
    ))  # fmt: skip


if __name__ == "__main__":
    main()
