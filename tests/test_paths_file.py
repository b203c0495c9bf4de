"""HeadPaths: the record, its table and ranking, and its file read as untrusted data (the
discipline of the HeadScores file: tests/test_scores_file.py, tests/test_fuzz_loaders.py)."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_loaders import FUZZ, bounded, edited, mutations, npy, rezip

from headwidget import HeadPaths, HeadScores
from headwidget.scores import PathsFileError
from headwidget.scores.paths import EDGE_COLUMNS, VIA


def sample(**changes) -> HeadPaths:
    fields = dict(
        tasks=["copying", "next year"], n_layers=3, n_heads=4,
        heads={"copying": np.array([[0, 1], [2, 3]]), "next year": np.array([[1, 0]])},
        edges=np.array([[0, 0, 1, 2, 3, 1], [0, 0, 1, -1, -1, 3], [0, 2, 3, -1, -1, 3],
                        [1, 1, 0, -1, -1, 3]]),
        effect=np.array([0.5, -0.7, np.nan, 0.1]),
        exact=np.array([True, True, False, True]),
        effects={"copying": np.array([[0.4, 0.6], [-0.7, -0.7], [np.nan, 0.0]])},
        clean={"copying": np.array([-1.0, -2.0])},
        baseline={"copying": -1.5, "next year": float("nan")},
        method="attribution",
        meta={"model": "tiny", "limits": [float("inf"), 2], "agreement": {"copying": {}}},
    )  # fmt: skip
    return HeadPaths(**{**fields, **changes})


def test_the_table_has_one_row_per_edge_with_na_for_the_logits():
    frame = sample().to_pandas()
    assert list(frame.columns) == [*EDGE_COLUMNS[:-1], "via", "effect", "sem", "exact"]
    assert frame["via"].tolist() == ["k", "logits", "logits", "logits"]
    assert frame["receiver_layer"].isna().tolist() == [False, True, True, True]
    assert frame.loc[0, "receiver_layer"] == 2 and frame.loc[0, "receiver_head"] == 3
    assert frame.loc[0, "sem"] == pytest.approx(0.1)  # std 0.1414 / sqrt(2)
    assert np.isnan(frame.loc[3, "sem"])  # no per-example effects for next year
    plain = sample(exact=None, effects={}, clean={}).to_pandas()
    assert "sem" not in plain.columns and "exact" not in plain.columns


def test_top_edges_rank_by_size_or_sign_and_never_rank_nan():
    paths = sample()
    assert [e.effect for e in paths.top_edges("copying", 5)] == pytest.approx([-0.7, 0.5])
    assert [e.effect for e in paths.top_edges("copying", 5, signed=True)] == pytest.approx(
        [0.5, -0.7]
    )
    edge = paths.top_edges("copying", 1, signed=True)[0]
    assert (edge.sender, edge.receiver, edge.via, edge.exact) == ((0, 1), (2, 3), "k", True)
    assert str(edge) == "L0H1 -> L2H3 via k: +0.5 ± 0.1"
    assert paths.top_edges("next year", 0) == []
    with pytest.raises(ValueError, match="k >= 0"):
        paths.top_edges("copying", -1)
    with pytest.raises(KeyError, match="no task"):
        paths.top_edges("counting")


def test_save_and_load_give_back_every_field(tmp_path):
    paths = sample()
    path = paths.save(tmp_path / "paths")  # .npz appended
    assert path.name == "paths.npz"
    back = HeadPaths.load(tmp_path / "paths")
    for name in ("tasks", "n_layers", "n_heads", "method", "via"):
        assert getattr(back, name) == getattr(paths, name)
    np.testing.assert_array_equal(back.edges, paths.edges)
    np.testing.assert_array_equal(back.effect, paths.effect)
    np.testing.assert_array_equal(back.exact, paths.exact)
    np.testing.assert_array_equal(back.effects["copying"], paths.effects["copying"])
    np.testing.assert_array_equal(back.heads["next year"], [[1, 0]])
    assert back.meta["limits"][0] == float("inf") and np.isnan(back.baseline["next year"])
    assert back.to_pandas().equals(paths.to_pandas())


def test_merge_joins_shards_of_different_tasks(tmp_path):
    paths = sample()
    first = sample(tasks=["copying"], heads={"copying": paths.heads["copying"]},
                   edges=paths.edges[:3], effect=paths.effect[:3], exact=paths.exact[:3],
                   baseline={"copying": -1.5})  # fmt: skip
    second = sample(tasks=["next year"], heads={"next year": paths.heads["next year"]},
                    edges=paths.edges[3:] * [0, 1, 1, 1, 1, 1], effect=paths.effect[3:],
                    exact=None, effects={}, clean={}, baseline={})  # fmt: skip
    merged = HeadPaths.merge([first, second])
    assert merged.tasks == paths.tasks
    np.testing.assert_array_equal(merged.edges, paths.edges)
    assert (
        merged.to_pandas()
        .drop(columns="sem")
        .equals(sample(baseline={"copying": -1.5}).to_pandas().drop(columns="sem"))
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"edges": np.array([[0, 0, 1, 0, 2, 0]] * 4)}, "not in a later layer"),
        ({"edges": np.array([[0, 0, 1, 2, 3, 3]] * 4)}, "logits names a receiver"),
        ({"edges": np.array([[5, 0, 1, -1, -1, 3]] * 4)}, "task index"),
        ({"edges": np.array([[0, 0, 9, -1, -1, 3]] * 4)}, "sender is outside"),
        ({"edges": np.array([[0, 0, 1, 2, 3, 7]] * 4)}, "channel index"),
        ({"effect": np.zeros(3)}, "effect must be"),
        ({"effects": {"copying": np.zeros((2, 2))}}, "effects"),
        ({"clean": {"copying": np.zeros(3)}}, "different numbers of examples"),
        ({"heads": {"copying": np.array([[3, 0]])}}, "outside the model"),
        ({"tasks": ["a", "a"]}, "unique"),
        ({"via": ["q"]}, "via must be"),
    ],
)
def test_inconsistent_records_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        sample(**changes)


def archive_members() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        data = sample().save(Path(folder) / "p.npz").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


MEMBERS = archive_members()
VALID = rezip(MEMBERS)


def load_error(tmp_path, data: bytes) -> str:
    path = tmp_path / "input.npz"
    path.write_bytes(data)
    with pytest.raises(PathsFileError) as info:
        HeadPaths.load(path)
    assert "input.npz' is not a HeadPaths file" in str(info.value)
    return info.value.problem


def test_files_that_are_not_headpaths_are_refused_in_one_line(tmp_path):
    scores = HeadScores(np.zeros((1, 2, 2), np.float32), ["a"]).save(tmp_path / "s.npz")
    assert "names format 'headwidget.scores'" in load_error(tmp_path, scores.read_bytes())
    assert "empty" in load_error(tmp_path, b"")
    assert "not a .npz" in load_error(tmp_path, b"hello")
    assert "unexpected array 'extra'" in load_error(
        tmp_path, rezip({**MEMBERS, "extra.npy": npy(np.zeros(2))})
    )
    wrong = {**MEMBERS, "edges.npy": npy(np.zeros((4, 6), np.float32))}
    assert "'edges' must be 2-D of kind 'i'" in load_error(tmp_path, rezip(wrong))
    wrong = {**MEMBERS, "edges.npy": npy(np.zeros((4, 5), np.int32))}
    assert "'edges' has shape (4, 5)" in load_error(tmp_path, rezip(wrong))
    header = json.loads(np.load(io.BytesIO(MEMBERS["header.npy"])).tobytes())
    newer = npy(np.frombuffer(json.dumps({**header, "version": 9}).encode(), np.uint8))
    assert "newer headwidget" in load_error(tmp_path, rezip({**MEMBERS, "header.npy": newer}))
    later = {**MEMBERS, "effects_0.npy": npy(np.zeros((2, 2), np.float32))}
    assert "effects" in load_error(tmp_path, rezip(later))
    with pytest.raises(FileNotFoundError, match="no HeadPaths file"):
        HeadPaths.load(tmp_path / "missing.npz")


def check_outcome(outcome) -> None:
    if isinstance(outcome, Exception):
        assert type(outcome) is PathsFileError, repr(outcome)
        assert "input.npz" in str(outcome)
    else:
        assert isinstance(outcome, HeadPaths)


@FUZZ
@given(st.lists(mutations(len(VALID)), min_size=1, max_size=3))
def test_damaged_paths_files_raise_only_paths_file_error(edits):
    check_outcome(bounded(HeadPaths.load, edited(VALID, edits), ".npz"))


@FUZZ
@given(st.sampled_from(sorted(MEMBERS)), st.data())
def test_damaged_members_with_valid_checksums_raise_only_paths_file_error(name, data):
    member = MEMBERS[name]
    member = edited(member, data.draw(st.lists(mutations(len(member)), min_size=1, max_size=3)))
    check_outcome(bounded(HeadPaths.load, rezip({**MEMBERS, name: member}), ".npz"))


def test_via_names_the_four_channels():
    assert VIA == ("q", "k", "v", "logits")
