"""``headwidget show`` and static figures with task names taken from untrusted files: terminal
escapes and unencodable characters are printed escaped, never-scored (NaN) heads are never
ranked, and a figure draws names of any length or character in bounded time."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from headwidget import HeadScores
from headwidget.cli import main

pytest.importorskip("matplotlib")

from headwidget.views.plotting import plot_scores  # noqa: E402


def _scores(names: list[str], **kwargs) -> HeadScores:
    values = np.random.default_rng(0).random((len(names), 2, 3)).astype(np.float32)
    return HeadScores(values, names, **kwargs)


def _show(path: Path, *args: str, encoding: str = "utf-8") -> tuple[int, bytes]:
    """Run ``headwidget show`` with stdout encoded as a terminal with ``encoding`` would take
    it; the exit code and the bytes written."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding=encoding, write_through=True)
    saved, sys.stdout = sys.stdout, stdout
    try:
        code = main(["show", str(path), *args])
    finally:
        sys.stdout = saved
    return code, buffer.getvalue()


def test_show_escapes_terminal_control_sequences_in_names(tmp_path) -> None:
    names = ["a\x1b[2J\x1b]0;pwned\x07b", "line\nbreak\rback", "bidi\u202egnp.exe", "plain"]
    path = _scores(names, meta={"model": "m\x1b[31m"}).save(tmp_path / "s.npz")
    code, out = _show(path, "--top", "1")
    assert code == 0
    text = out.decode()
    assert not any(c in text for c in "\x1b\x07\r\u202e")
    assert "\\x1b[2J" in text and "\\x07" in text and "\\u202e" in text
    # a newline in a name stays inside its one line; plain names print as they are
    assert "line\\nbreak\\rback" in text
    assert "\nplain\n" in text
    assert "m\\x1b[31m" in text.splitlines()[0]


def test_show_prints_a_lone_surrogate_escaped(tmp_path) -> None:
    path = _scores(["s\udc80x", "→ ok"]).save(tmp_path / "s.npz")
    code, out = _show(path, "--top", "1")
    assert code == 0
    assert "s\\udc80x" in out.decode()
    assert "→ ok" in out.decode()
    # a terminal that cannot encode a character gets it escaped, not an error
    code, out = _show(path, "--top", "1", encoding="ascii")
    assert code == 0
    assert "s\\udc80x" in out.decode() and "\\u2192 ok" in out.decode()


def test_show_never_ranks_never_scored_heads(tmp_path) -> None:
    values = np.full((2, 2, 3), np.nan, np.float32)
    values[0, 1, 2] = 0.5  # a shard: one head of the first task scored, the second none
    path = HeadScores(values, ["part", "none"]).save(tmp_path / "s.npz")
    code, out = _show(path, "--top", "5")
    assert code == 0
    text = out.decode()
    assert "inf" not in text and "nan" not in text
    part = text.split("\npart")[1].split("\nnone")[0]
    assert [line.strip() for line in part.strip().splitlines()] == [
        "reliability: no per-example effects",  # how sure the map is, then its heads
        "1. L1H2  +0.5",
    ]
    assert "(no head scored)" in text.split("\nnone")[1]


@pytest.mark.parametrize("name", ["$x_$", "a $\\frac$ b", "cost $5", "\\$", "$$"])
def test_a_dollar_sign_in_a_name_draws_as_itself(tmp_path, name) -> None:
    path = _scores([name, "other"]).save(tmp_path / "s.npz")
    png = tmp_path / "s.png"
    code, _ = _show(path, "--png", str(png))
    assert code == 0 and png.stat().st_size > 0
    title = plot_scores(HeadScores.load(path)).axes[0].title
    assert title.get_text() == name and not title.get_usetex()
    assert title._preprocess_math(title.get_text()) == (name, False)


def test_a_one_megabyte_name_draws_in_bounded_time(tmp_path) -> None:
    name = "x" * 1_000_000
    path = _scores([name, "other"]).save(tmp_path / "s.npz")
    png = tmp_path / "s.png"
    start = time.perf_counter()
    code, _ = _show(path, "--top", "1", "--png", str(png))
    assert code == 0
    assert time.perf_counter() - start < 5.0
    from PIL import Image

    with Image.open(png) as image:  # the figure keeps its size: the name is cut, not drawn
        assert image.width < 2000 and image.height < 2000
    title = plot_scores(HeadScores.load(path)).axes[0].get_title()
    assert title.endswith("…") and len(title) < 200


def test_figure_names_are_cut_and_escaped_like_the_widget() -> None:
    names = ["a " * 300, "tab\there\x00\x1b", "s\udc80", "Syntactic Understanding"]
    fig = plot_scores(_scores(names, categories={n: n for n in names}), kind="tasks")
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert all(len(t) < 200 for t in titles)
    assert titles[0].endswith("…") and titles[0].count("\n") <= 2
    assert titles[1] == "tab here\\x00\\x1b"
    assert titles[2] == "s\\udc80"
    assert titles[3] == "Syntactic Understanding"
    for suffix in ("png", "svg", "pdf"):
        fig.savefig(io.BytesIO(), format=suffix)
    cats = plot_scores(_scores(names, categories={n: n for n in names}), kind="categories")
    legend = cats.axes[0].get_legend()
    assert all(len(t.get_text()) < 200 for t in legend.get_texts())
    assert all(len(ax.get_title()) < 200 for ax in cats.axes)
    for suffix in ("png", "svg"):
        cats.savefig(io.BytesIO(), format=suffix)
