"""Head roles in the widget and its exports (headwidget.views.roles, grid_roles) and the
drill-down's "what a head writes" (headwidget.views.writes): the traits, where the glyphs go,
the role filter, images and pages with the glyphs, unknown options and mismatched shapes.

The page and image tests need the built front end (``cd js && npm ci && npm run build``).
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import traitlets
from test_projection import PAIRS, operation
from tiny_models import tiny_model, word_tokenizer

from headwidget import HeadImportanceGrid, HeadScores, Task
from headwidget.views import roles as rl
from headwidget.views.plotting import plot_scores
from headwidget.views.widget import TRAIT_OPTIONS
from headwidget.views.writes import head_writes

ROOT = Path(__file__).resolve().parents[1]
ROLES = ["previous token", "induction", "first token"]


def task_scores() -> HeadScores:
    rng = np.random.default_rng(0)
    names = ["copying", "antonym", "capital"]
    return HeadScores(
        rng.random((3, 4, 5)).astype(np.float32),
        names,
        categories={"copying": "Algorithmic", "antonym": "Linguistic", "capital": "Knowledge"},
        meta={"model": "tiny/llama", "metric": "logprob"},
    )


def role_scores() -> HeadScores:
    """3 roles x 4 layers x 5 heads: (1, 2) previous token, (2, 3) induction, (3, 0) both,
    every head of layer 0 a first-token head."""
    values = np.full((3, 4, 5), 0.1, np.float32)
    values[0, 1, 2] = 0.8
    values[1, 2, 3] = 0.9
    values[0, 3, 0], values[1, 3, 0] = 0.5, 0.6
    values[2, 0, :] = 0.7
    return HeadScores(values, ROLES, meta={"units": "attention share", "model": "tiny/llama"})


def test_role_traits_and_defaults() -> None:
    roles = role_scores()
    grid = HeadImportanceGrid(task_scores(), roles=roles)
    assert grid.roles is roles
    decoded = np.frombuffer(grid.role_values, "<f4").reshape(3, 4, 5)
    np.testing.assert_array_equal(decoded, roles.values)
    np.testing.assert_array_equal(grid.role_array(), roles.values)
    assert grid.role_info["names"] == ROLES
    assert grid.role_info["shapes"] == ["triangle", "diamond", "circle"]
    assert grid.role_info["units"] == "attention share"
    assert grid.roles_shown == ["previous token", "induction"]  # attention sinks not marked
    assert (grid.role_threshold, grid.role_filter) == (0.4, "")
    for name in ("roles_shown", "role_threshold", "role_filter"):
        assert name in TRAIT_OPTIONS
    plain = HeadImportanceGrid(task_scores())
    assert (plain.role_values, plain.role_info, plain.roles, plain.role_array()) == (
        b"",
        {},
        None,
        None,
    )


def test_the_role_threshold_is_the_methods_one() -> None:
    from headwidget.methods.roles import ROLE_THRESHOLD

    assert rl.ROLE_THRESHOLD == ROLE_THRESHOLD


def test_roles_from_a_path_and_options_given_with_them(tmp_path) -> None:
    path = role_scores().save(tmp_path / "roles.npz")
    grid = HeadImportanceGrid(
        task_scores(),
        roles=path,
        roles_shown=["first token"],
        role_threshold=0.55,
        role_filter="induction",
        tab="roles",
    )
    assert grid.roles_shown == ["first token"] and grid.role_threshold == 0.55
    assert (grid.role_filter, grid.tab) == ("induction", "roles")
    marks = grid.role_marks()
    assert marks is not None and marks.shown_names == ["first token"] and marks.threshold == 0.55


def test_mismatched_shapes_and_wrong_types_are_clear_errors() -> None:
    other = HeadScores(np.zeros((1, 4, 6), np.float32), ["induction"])
    with pytest.raises(ValueError, match="4 layers x 6 heads but these scores 4 x 5"):
        HeadImportanceGrid(task_scores(), roles=other)
    with pytest.raises(TypeError, match="roles= takes the HeadScores of detect_heads"):
        HeadImportanceGrid(task_scores(), roles=np.zeros((1, 4, 5)))
    grid = HeadImportanceGrid(task_scores(), roles=role_scores())
    with pytest.raises(ValueError, match="4 layers x 6 heads"):
        grid.set_roles(other)
    with pytest.raises(traitlets.TraitError, match="role_values has 3 bytes"):
        grid.role_values = b"abc"


def test_unknown_options_and_bad_values_are_rejected_by_trait_name() -> None:
    scores = task_scores()
    with pytest.raises(TypeError, match=r"unknown option.*'role_treshold'.*'role_threshold'"):
        HeadImportanceGrid(scores, roles=role_scores(), role_treshold=0.5)
    for option, value, message in (
        ("roles_shown", ["nope"], r"roles_shown names \['nope'\]"),
        ("role_filter", "nope", "role_filter must be '' .* or one of the roles"),
        ("role_threshold", float("nan"), "role_threshold must be a finite number"),
        ("tab", "rolez", "'roles'"),
    ):
        with pytest.raises(traitlets.TraitError, match=message):
            HeadImportanceGrid(scores, roles=role_scores(), **{option: value})
    with pytest.raises(traitlets.TraitError, match="no roles given"):
        HeadImportanceGrid(scores, tab="roles")
    with pytest.raises(traitlets.TraitError, match="the grid has no roles"):
        HeadImportanceGrid(scores, roles_shown=["induction"])


def test_glyph_placement() -> None:
    roles = role_scores()
    shown = [0, 1]  # previous token, induction
    assert rl.glyph_cells(roles.values, 0.4, shown) == [
        (1, 2, [0]),
        (2, 3, [1]),
        (3, 0, [0, 1]),
    ]
    assert rl.glyph_cells(roles.values, 0.55, shown) == [(1, 2, [0]), (2, 3, [1]), (3, 0, [1])]
    assert rl.glyph_cells(roles.values, 0.4, []) == []
    marks = rl.RoleMarks(roles)
    assert marks.cells() == rl.glyph_cells(roles.values, 0.4, shown)
    everything = rl.RoleMarks(roles, shown=ROLES)
    assert [cell for cell in everything.cells() if cell[0] == 0] == [(0, h, [2]) for h in range(5)]
    offsets, radius = rl.glyph_slots(2)
    assert offsets == [-0.25, 0.25] and radius == pytest.approx(0.23)
    assert rl.glyph_slots(1) == ([0.0], 0.4)
    for shape in rl.GLYPH_SHAPES:
        points = np.array(rl.glyph_polygon(shape))
        assert len(points) >= 3 and np.abs(points).max() <= 1.0 + 1e-9


def test_glyph_shapes_are_one_per_role_and_the_front_ends() -> None:
    assert rl.glyph_shapes(["induction", "two back", "previous token", "x"]) == [
        "diamond",
        "triangle_up",  # the shapes of no built-in role first
        "triangle",
        "plus",
    ]
    builtin = list(rl.BUILTIN_SHAPES)
    assert len(set(rl.glyph_shapes(builtin))) == len(builtin)
    source = (ROOT / "js" / "src" / "roles.ts").read_text(encoding="utf-8")
    table = re.search(r"BUILTIN_SHAPES[^{]*\{(.*?)\}", source, re.S).group(1)
    pairs = dict(re.findall(r'"?(\w[\w ]*?)"?: "(\w+)"', table))
    assert pairs == rl.BUILTIN_SHAPES
    order = re.search(r"GLYPH_SHAPES = \[(.*?)\]", source).group(1)
    assert re.findall(r'"(\w+)"', order) == list(rl.GLYPH_SHAPES)
    assert "Math.min(0.4, 0.46 / k)" in source  # glyph_slots' radius


def test_role_filter_fades_the_heads_without_the_role() -> None:
    roles = role_scores()
    marks = rl.RoleMarks(roles, filter="induction")
    faded = marks.faded()
    assert faded.shape == (4, 5) and (~faded).sum() == 2
    assert not faded[2, 3] and not faded[3, 0] and faded[1, 2]
    assert marks.cells() == [(2, 3, [1]), (3, 0, [0, 1])]  # glyphs only on the kept heads
    assert rl.RoleMarks(roles).faded() is None
    with pytest.raises(ValueError, match=r"no role\(s\) \['nope'\]"):
        rl.RoleMarks(roles, filter="nope")
    grid = HeadImportanceGrid(task_scores(), roles=roles)
    grid.role_filter = "induction"
    grid.set_roles(None)  # the filter, the shown roles and the tab go with the roles
    assert (grid.role_filter, grid.roles_shown, grid.role_info) == ("", [], {})


def test_set_scores_keeps_matching_roles_and_drops_others() -> None:
    grid = HeadImportanceGrid(task_scores(), roles=role_scores(), tab="roles")
    grid.writes = {"1,2": {"copying": {"task": "copying"}}}
    grid.set_scores(task_scores())
    assert grid.roles is not None and grid.writes  # same model, same heads
    grid.set_scores(HeadScores(np.ones((2, 3, 5), np.float32), ["a", "b"]))
    assert grid.roles is None and grid.tab == "all" and grid.writes == {}


def svg_ids(path: Path) -> list[str]:
    return [el.get("id", "") for el in ET.parse(path).getroot().iter()]


def test_images_draw_the_glyphs_and_their_legend(tmp_path) -> None:
    grid = HeadImportanceGrid(task_scores(), roles=role_scores())
    for tab in ("all", "categories", "roles", "task:copying"):
        grid.tab = tab
        svg = grid.save(tmp_path / f"{tab.replace(':', '-')}.svg")
        ids = svg_ids(svg)
        panels = 1 if tab.startswith("task:") else 3 if tab != "categories" else 4
        assert sum(i.startswith("role-glyphs") for i in ids) == panels, tab
        text = svg.read_text(encoding="utf-8")
        assert "roles: attention share" in text and ">induction<" in text
        assert not any(i.startswith("role-faded") for i in ids)
    # the roles tab draws the role maps, heads at or above the role threshold outlined
    assert "Role score (attention share)" in (tmp_path / "roles.svg").read_text()
    assert "2 heads ≥ 0.40" in (tmp_path / "roles.svg").read_text()
    grid.tab = "all"
    grid.role_filter = "induction"
    ids = svg_ids(grid.save(tmp_path / "filtered.svg"))
    assert sum(i.startswith("role-faded") for i in ids) == 3
    # a PNG differs where a glyph is drawn
    grid.role_filter = ""
    with_glyphs = grid.save(tmp_path / "with.png", scale=1)
    grid.roles_shown = []
    without = grid.save(tmp_path / "without.png", scale=1)
    assert with_glyphs.read_bytes() != without.read_bytes()


def test_plot_scores_takes_role_marks() -> None:
    fig = plot_scores(task_scores(), roles=rl.RoleMarks(role_scores(), threshold=0.55))
    collections = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "role-glyphs"]
    assert len(collections) == 3
    # (1, 2), (2, 3) and (3, 0): one glyph each at 0.55
    assert all(len(c.get_paths()) == 3 for c in collections)
    centre = collections[0].get_paths()[0].vertices.mean(axis=0)
    assert centre[1] == pytest.approx(1, abs=0.3)  # layer 1, drawn on its row
    assert len(fig.legends) == 1


def page_state(path: Path) -> tuple[dict, bytes]:
    text = path.read_text(encoding="utf-8")
    state = json.loads(re.search(r'id="headwidget-state">(.*?)</script>', text, re.S).group(1))
    raw = re.search(r'id="headwidget-role_values">(.*?)</script>', text, re.S).group(1)
    return state, base64.b64decode(raw)


def test_the_saved_page_carries_the_role_maps_and_precomputed_writes(tmp_path) -> None:
    roles = role_scores()
    grid = HeadImportanceGrid(task_scores(), roles=roles, role_filter="induction")
    grid.writes = {"2,3": {"copying": {"task": "copying", "layer": 2, "head": 3}}}
    state, raw = page_state(grid.save(tmp_path / "grid.html"))
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(3, 4, 5), roles.values)
    assert state["role_info"]["names"] == ROLES and state["role_filter"] == "induction"
    assert state["roles_shown"] == ["previous token", "induction"]
    assert state["role_threshold"] == 0.4 and state["_saved_page"] is True
    assert state["writes"]["2,3"]["copying"]["head"] == 3


# -- the model's side: detect_roles, what a head writes ------------------------------------------


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model("llama", vocab_size=len(tok))


def ops() -> list[Task]:
    copy = operation([(s, s) for s, _ in PAIRS[:6]], name="copying")
    plain = Task("plain", [(f"{s} ->", f" {t}") for s, t in PAIRS[:4]])  # no source words
    return [operation(PAIRS[:8]), copy, plain]


@pytest.fixture(scope="module")
def live_grid(model, tok):
    grid = HeadImportanceGrid(model, tok, tasks=ops())
    grid.compute()
    return grid


def test_detect_roles_uses_the_held_model(live_grid, model, tok) -> None:
    from headwidget import detect_heads

    roles = live_grid.detect_roles(n_sequences=2, seq_len=8)
    assert live_grid.roles is roles and roles.shape == (5, 2, 4)
    expected = detect_heads(model, tok, n_sequences=2, seq_len=8, progress=False)
    np.testing.assert_allclose(roles.values, expected.values, atol=1e-6)
    scores_only = HeadImportanceGrid(live_grid.scores)
    with pytest.raises(ValueError, match="holds no model"):
        scores_only.detect_roles()
    assert scores_only.detect_roles(model, tok, n_sequences=2, seq_len=8).shape == roles.shape


def test_the_drill_down_asks_what_a_head_writes(live_grid, model, tok) -> None:
    from headwidget.methods.ov_circuit import copying_score, head_mapping, ov_top_tokens

    content, buffers = live_grid.reply(
        {"type": "hw:writes", "request": 3, "task": "op", "layer": 1, "head": 2}
    )
    assert buffers == [] and content["request"] == 3 and "error" not in content, content
    mapping = head_mapping(model, tok, 1, 2, ops()[0])
    pairs = content["mapping"]["pairs"]
    assert [(p["source"], p["target"], p["rank"]) for p in pairs] == [
        (p.source, p.target.strip(), p.rank) for p in mapping.pairs
    ]
    assert content["mapping"]["fraction"] == pytest.approx(mapping.fraction)
    assert content["mapping"]["k"] == 10 and content["copying"] is None
    top = ov_top_tokens(model, tok, 1, 2, "cat", n=10)
    assert content["tokens"]["cat"]["promoted"][0][0] == top["promoted"][0][0]
    assert content["sources"][:2] == ["cat", "bird"]
    # another source's tokens, a copying task's copying score, a task without sources
    other = live_grid.reply(
        {"type": "hw:writes", "task": "op", "layer": 1, "head": 2, "source": "red"}
    )[0]
    assert list(other["tokens"]) == ["red"]
    two = live_grid.reply(
        {"type": "hw:writes", "task": "op", "layer": 1, "head": 2, "source": "big cat"}
    )[0]
    assert (
        two["tokens"]["big cat"]["promoted"] == []
        and "not one token" in two["tokens"]["big cat"]["note"]
    )
    copy = live_grid.reply({"type": "hw:writes", "task": "copying", "layer": 0, "head": 1})[0]
    assert copy["mapping"]["k"] == 1
    assert copy["copying"] == pytest.approx(copying_score(model, tok, 0, 1, ops()[1]))
    plain = live_grid.reply({"type": "hw:writes", "task": "plain", "layer": 0, "head": 1})[0]
    assert "no source words" in plain["reason"]
    bad = live_grid.reply({"type": "hw:writes", "task": "op", "layer": 9, "head": 0})[0]
    assert bad["error"] == "ValueError: no head (9, 0)" and bad["layer"] == 9
    unheld = HeadImportanceGrid(live_grid.scores).reply(
        {"type": "hw:writes", "task": "op", "layer": 0, "head": 0}
    )[0]
    assert "holds no model" in unheld["error"] and unheld["task"] == "op"


def test_precompute_writes_for_a_saved_page(live_grid, model, tok, tmp_path) -> None:
    live_grid.writes = {}
    found = live_grid.precompute_writes(top=2)
    top_op = [f"{a},{b}" for a, b, _ in live_grid.scores.top_heads("op", k=2)]
    assert all("op" in found[key] for key in top_op)
    record = found[top_op[0]]["op"]
    layer, head = map(int, top_op[0].split(","))
    assert record == json.loads(json.dumps(record))  # plain JSON
    assert len(record["tokens"]) == 6  # the first sources' tokens, for the page's menu
    assert record["mapping"] == head_writes(model, tok, ops()[0], layer, head)["mapping"]
    live_grid.precompute_writes([(0, 0)], tasks=["copying"])
    assert "copying" in live_grid.writes["0,0"] and top_op[0] in live_grid.writes
    state, _ = page_state(live_grid.save(tmp_path / "page.html"))
    assert state["writes"]["0,0"]["copying"]["copying"] is not None
    with pytest.raises(ValueError, match=r"no task\(s\) \['nope'\]"):
        live_grid.precompute_writes(tasks=["nope"])
    with pytest.raises(ValueError, match="needs scores and the model"):
        HeadImportanceGrid(live_grid.scores).precompute_writes()
    given = HeadImportanceGrid(live_grid.scores)
    given.precompute_writes([(1, 1)], model=model, tokenizer=tok, task_list=ops()[:1])
    assert list(given.writes) == ["1,1"]
