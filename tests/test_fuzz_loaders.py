"""Property-based tests: damaged score files and random task files raise only the documented
error types (ScoresFileError, TaskDataError), each within a fixed time (hypothesis' deadline)
and memory bound (tracemalloc's peak; numpy's allocations are traced too); a damaged units
folder never makes ``--resume`` raise anything but its one-line refusal, and never adopts a
unit of another sweep; well-quoted CSV loads row for row; task names of any length and
characters print on one line and draw bounded."""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
import tempfile
import tracemalloc
import warnings
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwidget import HeadScores, ScoresFileError, Task, TaskDataError, load_tasks
from headwidget.sweep.checkpoint import (
    UNITS_FORMAT,
    CheckpointMismatchError,
    TaskInfo,
    UnitRecord,
    UnitsFolderError,
    UnitStore,
)
from headwidget.sweep.units import Unit

# A few minutes for the whole file on a 2-core CI machine; each example is a file of < 10 kB.
FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)
MEMORY_LIMIT = 16 * 2**20  # bytes: every input here is tiny, so any big allocation is a bug


def valid_file() -> bytes:
    values = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    values[1, 2, 3] = np.nan
    exact = np.ones(values.shape, bool)
    exact[0, 0, :2] = False
    scores = HeadScores(
        values,
        ["copying", "country → capital", "<b>odd</b>"],
        categories={"copying": "Algorithmic"},
        baseline={"copying": -0.5, "<b>odd</b>": float("nan")},
        meta={"model": "tiny", "limits": [float("inf"), 2], "nested": {"a": [1, {"b": None}]}},
        descriptions={"copying": "repeat the word"},
        accuracy={"copying": 0.5},
        method="attribution",
        exact=exact,
        # format 3's per-example members, fuzzed like the others
        effects={"copying": np.ones((4, 5, 2), np.float32)},
        clean={"copying": np.array([-1.0, float("nan")])},
        examples={"copying": [("a b", " c"), ("d", " e")]},
    )
    with tempfile.TemporaryDirectory() as folder:
        return scores.save(Path(folder) / "s.npz").read_bytes()


VALID = valid_file()
with zipfile.ZipFile(io.BytesIO(VALID)) as _archive:
    MEMBERS = {name: _archive.read(name) for name in _archive.namelist()}


def bounded(load, data: bytes, suffix: str):
    """Write ``data`` to a file, call ``load(path)`` under tracemalloc; return what it returned
    or raised, after checking the peak memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            try:
                outcome = load(path)
            except Exception as err:  # noqa: BLE001 - the property is about its type
                outcome = err
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{peak:,} bytes for a {len(data):,}-byte input"
    return outcome


def check_scores_outcome(outcome) -> None:
    if isinstance(outcome, Exception):
        assert type(outcome) is ScoresFileError, repr(outcome)
        assert "input.npz" in str(outcome)
    else:
        assert isinstance(outcome, HeadScores)


def rezip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def mutations(size: int) -> st.SearchStrategy:
    """Edits of a byte string of ``size`` bytes: truncation, bit flips, overwritten or inserted
    runs of random bytes."""
    position = st.integers(0, max(size - 1, 0))
    return st.one_of(
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("flip"), st.lists(st.tuples(position, st.integers(0, 7)), max_size=8)),
        st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16)),
    )


def apply(data: bytes, edit: tuple) -> bytes:
    """``data`` edited (positions past its end wrap around; empty data stays empty)."""
    if not data:
        return data
    kind = edit[0]
    if kind == "truncate":
        return data[: edit[1]]
    if kind == "flip":
        out = bytearray(data)
        for at, bit in edit[1]:
            out[at % len(out)] ^= 1 << bit
        return bytes(out)
    at, chunk = edit[1] % len(data), edit[2]
    if kind == "overwrite":
        return data[:at] + chunk + data[at + len(chunk) :]
    return data[:at] + chunk + data[at:]


def edited(data: bytes, edits: list[tuple]) -> bytes:
    """``data`` with each of ``edits`` applied in turn (:func:`apply`)."""
    for edit in edits:
        data = apply(data, edit)
    return data


@FUZZ
@given(st.lists(mutations(len(VALID)), min_size=1, max_size=3))
def test_damaged_score_files_raise_only_scores_file_error(edits):
    check_scores_outcome(bounded(HeadScores.load, edited(VALID, edits), ".npz"))


@FUZZ
@given(st.sampled_from(sorted(MEMBERS)), st.data())
def test_damaged_members_with_valid_checksums_raise_only_scores_file_error(name, data):
    # Edits inside one member, re-zipped with correct CRCs, so that they reach the .npy and JSON
    # parsers instead of failing zip's checksum test.
    member = MEMBERS[name]
    member = edited(member, data.draw(st.lists(mutations(len(member)), min_size=1, max_size=3)))
    check_scores_outcome(bounded(HeadScores.load, rezip({**MEMBERS, name: member}), ".npz"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
HEADER_KEYS = (
    "format",
    "version",
    "tasks",
    "categories",
    "baseline",
    "accuracy",
    "method",
    "descriptions",
    "meta",
    "meta_nonfinite",
)


@FUZZ
@given(
    st.dictionaries(st.sampled_from(HEADER_KEYS), JSON, max_size=len(HEADER_KEYS)),
    st.sampled_from([(1, 2, 2), (2, 1, 1), (0, 3, 3)]),
)
def test_headers_of_random_shape_raise_only_scores_file_error(fields, shape):
    header = {"format": "headwidget.scores", "version": 2, "tasks": ["a"], **fields}
    text = json.dumps(header).encode()
    members = {
        "values.npy": npy(np.zeros(shape, np.float32)),
        "header.npy": npy(np.frombuffer(text, np.uint8)),
    }
    check_scores_outcome(bounded(HeadScores.load, rezip(members), ".npz"))


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


@FUZZ
@given(
    st.sampled_from(["<f4", ">f8", "<f2", "|u1", "|b1", "<i8", "|O", "<c8", "<U3", "|V4"]),
    st.lists(st.integers(0, 2**40), max_size=4).map(tuple),
    st.booleans(),
    st.binary(max_size=64),
    st.sampled_from(["values.npy", "header.npy", "exact.npy"]),
)
def test_npy_headers_claiming_anything_raise_only_scores_file_error(
    descr, shape, fortran, body, name
):
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape})
    preamble = np.lib.format.magic(1, 0)
    padded = text + " " * (-(len(preamble) + 2 + len(text) + 1) % 64) + "\n"
    member = preamble + len(padded).to_bytes(2, "little") + padded.encode("latin1") + body
    members = {**MEMBERS, name: member}
    check_scores_outcome(bounded(HeadScores.load, rezip(members), ".npz"))


# -- task files ------------------------------------------------------------------------------

COLUMNS = ("task", "prompt", "answer", "category", "distractor", "description", "Prompt", "x")
CELL = st.text(max_size=12) | st.sampled_from(["", " ", '"', '""', ",", "\t", "\r\n", "\ufeff"])


def check_tasks_outcome(outcome, suffix: str) -> None:
    if isinstance(outcome, Exception):
        assert type(outcome) is TaskDataError, repr(outcome)
        assert outcome.source.endswith(f"input{suffix}")
    else:
        assert outcome and all(isinstance(task, Task) and len(task) for task in outcome)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(COLUMNS), JSON | CELL, max_size=6).map(json.dumps),
            JSON.map(json.dumps),
            st.text(max_size=30),
        ),
        max_size=6,
    ),
    st.sampled_from(["\n", "\r\n"]),
    st.binary(max_size=4),
)
def test_random_jsonl_raises_only_task_data_error(lines, newline, prefix):
    data = prefix + newline.join(lines).encode("utf-8", "surrogatepass")
    check_tasks_outcome(bounded(load_tasks, data, ".jsonl"), ".jsonl")


@FUZZ
@given(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6),
    st.lists(st.lists(CELL, max_size=7), max_size=6),
    st.sampled_from([(",", ".csv"), ("\t", ".tsv")]),
    st.binary(max_size=4),
    st.booleans(),
)
def test_random_csv_raises_only_task_data_error(header, rows, kind, prefix, quote_all):
    delimiter, suffix = kind
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=delimiter, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    writer.writerows(rows)
    data = prefix + out.getvalue().encode("utf-8", "surrogatepass")
    check_tasks_outcome(bounded(load_tasks, data, suffix), suffix)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_random_bytes_as_task_files_raise_only_task_data_error(data, suffix):
    check_tasks_outcome(bounded(load_tasks, data, suffix), suffix)


# -- the units folder (OUT.npz.units/) ---------------------------------------------------------

UNIT_FP = {"model": "m", "shape": [2, 3], "keep_examples": True, "format": UNITS_FORMAT}
UNITS = [Unit(0, 0), Unit(0, 1)]


def units_folder_files(fingerprint: dict) -> dict[str, bytes]:
    """The files of a units folder of ``fingerprint`` holding two units and a clean file."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        store = UnitStore(Path(folder) / "u", fingerprint, [4])
        store.open(log=print)
        for unit in UNITS:
            effects = rng.normal(size=(1, 3, 4)).astype(np.float32)
            store.save_unit(UnitRecord(unit, effects.mean(-1), np.ones((1, 3), bool), effects))
        store.save_info(TaskInfo(0, -1.0, 0.5, {"examples": {"a": 4}}, np.zeros(4)))
        store.close()
        return {path.name: path.read_bytes() for path in store.folder.iterdir()}


GOOD = units_folder_files(UNIT_FP)
FOREIGN = units_folder_files({**UNIT_FP, "model": "another"})  # same file names


def resume(files: dict[str, bytes]) -> tuple[Exception | None, list[str], dict]:
    """What ``--resume`` does with a units folder holding ``files``: open it, verify the units,
    load those kept. Returns the error opening raised, the log lines and what was loaded, after
    checking that nothing else was raised and the peak memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.npz.units"
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
        store = UnitStore(path, UNIT_FP, [4])
        lines: list[str] = []
        loaded: dict = {}
        tracemalloc.start()
        try:
            try:
                store.open(log=lines.append)
            except UnitsFolderError as err:
                return err, lines, loaded
            try:
                for unit in store.verify(UNITS, lines.append):
                    loaded[unit] = store.load_unit(unit)
                if store.has_info(0):
                    loaded["clean"] = store.load_info(0)
            finally:
                store.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{peak:,} bytes"
    assert all("\n" not in line and "set aside as" in line for line in lines), lines
    return None, lines, loaded


@FUZZ
@given(st.sampled_from(sorted(n for n in GOOD if n != "fingerprint.json")), st.data())
def test_damaged_unit_and_clean_files_are_set_aside_never_raise(name, data):
    damaged = GOOD[name]
    damaged = edited(damaged, data.draw(st.lists(mutations(len(damaged)), min_size=1, max_size=3)))
    error, lines, loaded = resume({**GOOD, name: damaged})
    assert error is None
    key = name.split(".")[0]
    assert len(lines) <= 1 and all(line.startswith((f"unit {key}:", name)) for line in lines)
    assert len(loaded) == 3 - len(lines)  # each file is reused or set aside, never both


@FUZZ
@given(st.sampled_from(sorted(n for n in FOREIGN if n != "fingerprint.json")), st.data())
def test_a_foreign_unit_is_never_adopted_damaged_or_not(name, data):
    foreign = FOREIGN[name]
    foreign = edited(foreign, data.draw(st.lists(mutations(len(foreign)), max_size=2)))
    error, lines, loaded = resume({**GOOD, name: foreign})
    assert error is None and len(lines) == 1, lines
    assert len(loaded) == 2  # the two files of this sweep, not the foreign one


# non-blank cells (a blank prompt or answer is refused on purpose)
PLAIN_CELL = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    str.strip
) | st.sampled_from(['"', '""', '"a', 'a"', ",", "a\tb", "a\r\nb", '" ,\n"', '",\n"x'])


@FUZZ
@given(
    st.one_of(
        st.lists(mutations(len(GOOD["fingerprint.json"])), min_size=1, max_size=3).map(
            lambda edits: functools.reduce(apply, edits, GOOD["fingerprint.json"])
        ),
        JSON.map(lambda value: json.dumps(value).encode()),
    )
)
def test_a_damaged_fingerprint_is_refused_in_one_line_and_nothing_moved(fingerprint):
    error, lines, loaded = resume({**GOOD, "fingerprint.json": fingerprint})
    if error is None:  # an edit that kept the same JSON (white space)
        assert json.loads(fingerprint) == json.loads(GOOD["fingerprint.json"])
        assert len(loaded) == 3 and not lines
    else:
        assert type(error) in (UnitsFolderError, CheckpointMismatchError), repr(error)
        assert "out.npz.units" in str(error) and "\n" not in str(error)


@FUZZ
@given(
    st.lists(st.tuples(PLAIN_CELL, PLAIN_CELL), min_size=1, max_size=6),
    st.sampled_from([(",", ".csv"), ("\t", ".tsv")]),
    st.booleans(),
)
def test_well_quoted_csv_rows_load_as_written_never_merged(rows, kind, quote_all):
    # whatever the cells hold (quotes, delimiters, line breaks), a file quoted as the csv module
    # writes it loads row for row, and strict quoting refuses none of it
    delimiter, suffix = kind
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=delimiter, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(["prompt", "answer"])
    writer.writerows(rows)
    outcome = bounded(load_tasks, out.getvalue().encode(), suffix)
    assert not isinstance(outcome, Exception), outcome
    (task,) = outcome
    assert [(e.prompt, e.answer) for e in task.examples] == rows


# -- task names of any length and characters, printed by `show` and drawn in figures ---------

NAME = st.text(max_size=40) | st.tuples(st.text(min_size=1, max_size=8), st.integers(1, 10**5)).map(
    lambda piece: (piece[0] * piece[1])[: 10**6]
)
NAMES = settings(FUZZ, max_examples=100, deadline=timedelta(seconds=5))


@NAMES
@given(NAME, st.sampled_from(["utf-8", "ascii", "latin-1"]))
def test_show_prints_any_task_name_on_one_printable_line(name, encoding):
    from headwidget.cli import main

    scores = HeadScores(np.ones((1, 2, 2), np.float32), [name], meta={"model": name})
    with tempfile.TemporaryDirectory() as folder:
        path = scores.save(Path(folder) / "s.npz")
        buffer = io.BytesIO()
        stdout = io.TextIOWrapper(buffer, encoding=encoding, write_through=True)
        saved, sys.stdout = sys.stdout, stdout
        try:
            assert main(["show", str(path), "--top", "1"]) == 0
        finally:
            sys.stdout = saved
    lines = buffer.getvalue().decode(encoding).split("\n")
    # the header, a blank line, the name, how sure its map is, one head
    assert len(lines) == 6 and lines[-1] == "", lines[:5]
    assert all(line.isprintable() for line in lines)
    assert lines[3].strip() == "reliability: no per-example effects"
    assert lines[4].strip() == "1. L0H0  +1"
    try:
        name.encode(encoding)
        plain = name.isprintable()
    except UnicodeEncodeError:
        plain = False
    if plain:
        assert lines[2] == name


@NAMES
@given(NAME)
def test_figure_names_are_bounded_printable_lines(name):
    from headwidget.views.plotting import figure_text

    lines = figure_text(name).split("\n")
    assert len(lines) <= 3 and all(len(line) <= 30 for line in lines)
    assert all(line.isprintable() for line in lines)
    if len(name) > 90:
        assert lines[-1].endswith("…")


@settings(FUZZ, max_examples=10, deadline=timedelta(seconds=20))
@given(NAME, NAME)
def test_figures_draw_any_task_names(first, second):
    from headwidget.views.plotting import plot_scores

    if first == second:
        second += "!"
    scores = HeadScores(np.ones((2, 2, 2), np.float32), [first, second])
    figure = plot_scores(scores, title=first)
    out = io.BytesIO()
    with warnings.catch_warnings():  # characters DejaVu Sans lacks draw as boxes
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        figure.savefig(out, format="png", dpi=50, bbox_inches="tight")
    width, height = np.frombuffer(out.getvalue()[16:24], ">u4")
    assert width < 1000 and height < 1000
