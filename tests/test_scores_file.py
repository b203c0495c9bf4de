"""The HeadScores file read as untrusted data: sizes checked before reading, one error type
(ScoresFileError) naming the file, and saves that never destroy the old file."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from headwidget import HeadScores, ScoresFileError
from headwidget.scores import FORMAT_NAME, FORMAT_VERSION
from headwidget.scores.file import MAX_CELLS, MAX_HEADER_BYTES, MAX_JSON_DEPTH


def scores() -> HeadScores:
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    exact = np.ones(values.shape, bool)
    exact[1, 2, 3] = False
    return HeadScores(values, ["a", "b"], baseline={"a": 1.0}, meta={"m": 1}, exact=exact)


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def npy_header_only(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A .npy member whose header claims ``shape`` but which holds no data."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def header_bytes(**fields) -> bytes:
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "tasks": ["a"], **fields}
    return npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))


def write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


VALUES = npy_bytes(np.zeros((1, 2, 2), np.float32))


def load_error(path) -> ScoresFileError:
    with pytest.raises(ScoresFileError) as info:
        HeadScores.load(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{str(path)!r} is not a HeadScores file: ")
    return info.value


# -- saving ----------------------------------------------------------------------------------


def test_a_save_that_fails_part_way_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = scores().save(tmp_path / "s.npz")
    before = path.read_bytes()

    def failing_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space left"):
        scores().save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]  # no temporary file left
    monkeypatch.undo()
    assert HeadScores.load(path).tasks == ["a", "b"]


def test_save_keeps_an_upper_case_npz_suffix(tmp_path):
    assert scores().save(tmp_path / "x.NPZ").name == "x.NPZ"
    assert HeadScores.load(tmp_path / "x.NPZ").tasks == ["a", "b"]
    assert scores().save(tmp_path / "y").name == "y.npz"


def test_saved_file_round_trips_the_exact_mask(tmp_path):
    loaded = HeadScores.load(scores().save(tmp_path / "s"))
    np.testing.assert_array_equal(loaded.exact, scores().exact)


# -- sizes checked before reading -------------------------------------------------------------


def test_a_compressed_header_that_inflates_past_the_limit_is_refused_unread(tmp_path):
    huge = npy_header_only((MAX_HEADER_BYTES + 1,), "|u1") + bytes(MAX_HEADER_BYTES + 1)
    path = write_zip(
        tmp_path / "bomb.npz", {"values.npy": VALUES, "header.npy": huge}, zipfile.ZIP_DEFLATED
    )
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        error = load_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "header" in error.problem and "over the limit" in error.problem
    assert peak < 10 * 2**20


@pytest.mark.parametrize(
    ("shape", "descr", "message"),
    [
        ((100_000, 100_000, 10_000), "<f4", "over the limit"),  # 373 GiB claimed
        ((MAX_CELLS // 4, 4, 2), "<f4", "over the limit"),
        ((1, 2, 2), "<f4", "declares 16 bytes of data but its member holds 0"),
        ((1, 2, 2), "|O", "3-D float array"),
        ((4,), "<f4", "3-D float array"),
    ],
)
def test_npy_headers_are_checked_before_the_data_is_read(tmp_path, shape, descr, message):
    members = {"values.npy": npy_header_only(shape, descr), "header.npy": header_bytes()}
    error = load_error(write_zip(tmp_path / "claims.npz", members))
    assert message in str(error)


def test_the_exact_mask_must_be_bool_of_the_values_shape(tmp_path):
    for exact in (np.ones((1, 2, 2), np.uint8), np.ones((1, 2, 3), bool)):
        members = {
            "values.npy": VALUES,
            "header.npy": header_bytes(),
            "exact.npy": npy_bytes(exact),
        }
        assert "'exact' must be a bool array" in str(
            load_error(write_zip(tmp_path / "e.npz", members))
        )
    with pytest.raises(TypeError, match="exact must be a bool array"):
        HeadScores(np.zeros((1, 2, 2)), ["a"], exact=np.zeros((1, 2, 2), np.float32))


# -- damaged and foreign files ---------------------------------------------------------------


def test_damaged_and_foreign_files(tmp_path):
    good = scores().save(tmp_path / "good.npz").read_bytes()
    cases = {
        "empty.npz": (b"", "the file is empty"),
        "text.npz": (b"task,prompt,answer\n", "not a .npz (zip) archive"),
        "half.npz": (good[: len(good) // 2], "not a .npz (zip) archive"),
        "tail.npz": (good[:-30], "not a .npz (zip) archive"),
    }
    flipped = bytearray(good)
    flipped[good.index(b"\x93NUMPY") + 150] ^= 0x10  # inside the first member's data
    cases["flipped.npz"] = (bytes(flipped), "damaged")
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert message in str(load_error(path)), name
    assert "directory" in str(load_error(tmp_path))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"[1, 2]", "JSON list, not an object"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"format": "headwidget.scores", "version": 1, "tasks": ["a"', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"x": ' + b"[" * (MAX_JSON_DEPTH + 5) + b"]" * (MAX_JSON_DEPTH + 5) + b"}", "deeper"),
        (b'{"format": "headwidget.scores", "version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_headers_that_are_not_a_json_object(tmp_path, header, message):
    members = {"values.npy": VALUES, "header.npy": npy_bytes(np.frombuffer(header, np.uint8))}
    assert message in str(load_error(write_zip(tmp_path / "h.npz", members)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": "2"}, "'version' must be a positive integer"),
        ({"version": True}, "'version' must be a positive integer"),
        ({"version": FORMAT_VERSION + 1}, "newer headwidget"),
        ({"format": "other"}, "format 'other'"),
        ({"tasks": "a"}, "'tasks' must be a list"),
        ({"tasks": [1]}, "'tasks' must be a list of strings"),
        ({"tasks": ["a", "b"]}, "1 task rows in values but 2 task names"),
        ({"tasks": ["a", "a"]}, "1 task rows in values but 2 task names"),
        ({"categories": {"a": 3}}, "'categories' must be an object of strings or null"),
        ({"categories": {"zz": "K"}}, "categories given for unknown task"),
        ({"baseline": {"a": 10**400}}, "numbers that fit a float"),
        ({"baseline": {"a": "1.5"}}, "'baseline' must be an object of numbers"),
        ({"accuracy": []}, "'accuracy' must be an object"),
        ({"method": 3}, "'method' must be a string"),
        ({"descriptions": {"a": None}}, "'descriptions' must be an object of strings"),
        ({"meta": [1]}, "'meta' must be an object"),
        ({"meta": {"x": 1}, "meta_nonfinite": [["x"]]}, "bad 'meta_nonfinite'"),
        ({"meta_nonfinite": [[None]]}, "list of key paths"),
    ],
)
def test_headers_of_the_wrong_shape(tmp_path, fields, message):
    members = {"values.npy": VALUES, "header.npy": header_bytes(**fields)}
    assert message in str(load_error(write_zip(tmp_path / "h.npz", members)))


def test_header_without_tasks(tmp_path):
    header = npy_bytes(
        np.frombuffer(json.dumps({"format": FORMAT_NAME, "version": 1}).encode(), np.uint8)
    )
    members = {"values.npy": VALUES, "header.npy": header}
    assert "no 'tasks'" in str(load_error(write_zip(tmp_path / "h.npz", members)))


def test_many_tasks_load(tmp_path):
    n = 20_000
    names = [f"task {i}" for i in range(n)]
    big = HeadScores(np.zeros((n, 1, 2), np.float32), names)
    assert HeadScores.load(big.save(tmp_path / "many")).tasks == names
