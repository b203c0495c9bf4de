"""The units folder OUT.npz.units/ as untrusted input: every kind of damage to a unit or clean
file is named in one log line and set aside (renamed, never deleted); a folder that is not this
sweep's is refused in one line; the lock file; cleanup deletes only what headwidget wrote."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headwidget.sweep.checkpoint import UNITS_FORMAT, TaskInfo, UnitRecord, UnitStore
from headwidget.sweep.folder_lock import UnitsFolderBusy
from headwidget.sweep.unit_file import UnitFileError, UnitsFolderError, sweep_id
from headwidget.sweep.units import Unit

FP = {"model": "m", "shape": [2, 3], "keep_examples": True, "format": UNITS_FORMAT}
EXAMPLES = [4, 2]
UNITS = [Unit(t, layer) for t in range(2) for layer in range(2)]


def record(unit: Unit) -> UnitRecord:
    rng = np.random.default_rng(unit.task * 10 + unit.layer)
    effects = rng.normal(size=(1, 3, EXAMPLES[unit.task])).astype(np.float32)
    return UnitRecord(unit, effects.mean(-1), np.ones((1, 3), bool), effects)


def info(task: int) -> TaskInfo:
    return TaskInfo(task, -1.5, 0.5, {"examples": {"a": EXAMPLES[task]}}, np.zeros(EXAMPLES[task]))


def filled(folder: Path, fingerprint: dict | None = None) -> UnitStore:
    """A closed store of FP (or ``fingerprint``) holding every unit and clean file."""
    store = UnitStore(folder, fingerprint or FP, EXAMPLES)
    store.open(log=print)
    for unit in UNITS:
        store.save_unit(record(unit))
    for task in range(2):
        store.save_info(info(task))
    store.close()
    return store


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def npz(arrays: dict[str, np.ndarray | None]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **{k: v for k, v in arrays.items() if v is not None})
    return out.getvalue()


def npy_claiming(shape: tuple[int, ...]) -> bytes:
    text = repr({"descr": "<f4", "fortran_order": False, "shape": shape})
    preamble = np.lib.format.magic(1, 0)
    padded = text + " " * (-(len(preamble) + 2 + len(text) + 1) % 64) + "\n"
    return preamble + len(padded).to_bytes(2, "little") + padded.encode("latin1")


UNIT_DAMAGE = {
    "truncated": (lambda b, a: b[: len(b) // 2], "truncated"),
    "empty": (lambda b, a: b"", "empty"),
    "not a zip": (lambda b, a: b"hello " * 20, "truncated or damaged"),
    "one bit": (lambda b, a: b[:200] + bytes([b[200] ^ 4]) + b[201:], "damaged"),
    "reshaped values": (lambda b, a: npz({**a, "values": np.zeros((2, 2), "f4")}), "(2, 2)"),
    "complex values": (lambda b, a: npz({**a, "values": a["values"].astype("c8")}), "complex64"),
    "float64 values": (lambda b, a: npz({**a, "values": a["values"].astype("f8")}), "float64"),
    "effects gone": (lambda b, a: npz({**a, "effects": None}), "no per-example effects"),
    "examples short": (lambda b, a: npz({**a, "effects": a["effects"][..., :1]}), "effects"),
    "an extra array": (lambda b, a: npz({**a, "more": np.zeros(1)}), "more"),
    "another unit": (lambda b, a: npz({**a, "unit": np.array([1, 1])}), "holds unit t0001-l001"),
    "another sweep": (lambda b, a: npz({**a, "sweep": np.frombuffer(b"0" * 64, "u1")}), "another"),
    "no sweep stamp": (lambda b, a: npz({**a, "sweep": None}), "not stamped"),
    "a pickle": (lambda b, a: npz({**a, "exact": np.array([{}], object)}), "object"),
}


@pytest.mark.parametrize("kind", sorted(UNIT_DAMAGE))
def test_a_damaged_or_foreign_unit_is_named_set_aside_and_not_reused(tmp_path, kind) -> None:
    store = filled(tmp_path / "u")
    path = store.unit_path(Unit(0, 1))
    damage, says = UNIT_DAMAGE[kind]
    data = damage(path.read_bytes(), arrays_of(path))
    path.write_bytes(data)
    lines: list[str] = []
    assert store.verify(UNITS, lines.append) == [u for u in UNITS if u != Unit(0, 1)]
    assert len(lines) == 1 and lines[0].startswith("unit t0000-l001: "), lines
    assert says in lines[0] and lines[0].endswith(
        "set aside as t0000-l001.npz.rejected, scoring it again"
    )
    assert not path.exists() and (path.parent / "t0000-l001.npz.rejected").read_bytes() == data
    with pytest.raises(UnitFileError, match="t0000-l001.npz: missing"):
        store.load_unit(Unit(0, 1))


def test_a_unit_file_claiming_huge_arrays_is_refused_before_reading(tmp_path) -> None:
    store = filled(tmp_path / "u")
    path = store.unit_path(Unit(1, 0))
    arrays = arrays_of(path)
    members = {f"{name}.npy": io.BytesIO() for name in arrays}
    for name, array in arrays.items():
        np.save(members[f"{name}.npy"], array)
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(
                name, data.getvalue() if name != "values.npy" else npy_claiming((2**40, 3))
            )
    lines: list[str] = []
    assert Unit(1, 0) not in store.verify(UNITS, lines.append)
    assert "'values' is float32 of shape (1099511627776, 3)" in lines[0]
    store.unit_path(Unit(1, 1)).unlink()
    os.symlink(store.unit_path(Unit(0, 0)), store.unit_path(Unit(1, 1)))  # a link: never read
    lines.clear()
    assert Unit(1, 1) not in store.verify(UNITS, lines.append)
    assert "symbolic link" in lines[0] and store.unit_path(Unit(0, 0)).is_file()


INFO_DAMAGE = {
    "not JSON": ("{", "not valid JSON"),
    "a list": ("[1]", "not an object"),
    "nested deep": ("[" * 100_000 + "]" * 100_000, "nested deeper than 100"),
    "no baseline": (lambda p: {k: v for k, v in p.items() if k != "baseline"}, "no 'baseline'"),
    "baseline text": (lambda p: {**p, "baseline": "low"}, "'baseline' is not a number"),
    "another sweep": (lambda p: {**p, "sweep": "0" * 64}, "another sweep"),
    "another task": (lambda p: {**p, "task": 1}, "for task 1"),
    "meta a list": (lambda p: {**p, "meta": []}, "'meta'"),
    "clean short": (lambda p: {**p, "clean": [0.0]}, "1 clean metrics for 4 examples"),
    "clean gone": (lambda p: {**p, "clean": None}, "no per-example clean metric"),
    "not UTF-8": (b"\xff\xfe{", "not UTF-8"),
}


@pytest.mark.parametrize("kind", sorted(INFO_DAMAGE))
def test_a_damaged_clean_file_is_named_set_aside_and_measured_again(tmp_path, kind) -> None:
    store = filled(tmp_path / "u")
    path = store.folder / "t0000-clean.json"
    damage, says = INFO_DAMAGE[kind]
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    elif isinstance(damage, str):
        path.write_text(damage)
    else:
        path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    lines: list[str] = []
    assert store.verify(UNITS, lines.append) == UNITS  # units stay: only the clean file goes
    assert len(lines) == 1 and lines[0].startswith("t0000-clean.json (task 0's clean metric): ")
    assert says is None or says in lines[0], lines
    assert not store.has_info(0) and (store.folder / "t0000-clean.json.rejected").is_file()
    store.save_info(info(0))  # measured again
    assert store.load_info(0).baseline == -1.5


def test_a_folder_that_is_not_this_sweeps_is_refused_in_one_line(tmp_path) -> None:
    """Never adopted, never deleted: no fingerprint but a file, a fingerprint deleted, one
    damaged or nested deep, a link; another sweep's or format's fingerprint."""

    def refused(folder: Path, fingerprint: dict, *words: str) -> None:
        before = sorted(os.listdir(folder)) if folder.is_dir() else None
        with pytest.raises(UnitsFolderError) as raised:
            UnitStore(folder, fingerprint, EXAMPLES).open(log=print)
        text = str(raised.value)
        assert "\n" not in text and all(w in text for w in words), (words, text)
        if before is not None:
            assert sorted(os.listdir(folder)) == before  # nothing added, nothing removed

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my-results.csv").write_text("x")
    refused(mine, FP, "no fingerprint.json", "my-results.csv", "neither adopts nor deletes")
    store = filled(tmp_path / "u")
    stamp = store.folder / "fingerprint.json"
    text = stamp.read_text()
    refused(store.folder, {**FP, "model": "other"}, "different sweep", "model")
    for damage, *says in (
        ("{", "fingerprint.json", "not valid JSON"),
        ("[" * 100_000, "fingerprint.json", "nested deeper than 100"),
        ('{"format": 2}', "format 2", "not stamped"),
        ('{"model": "m"}', "format 1", "no per-example effects"),
        ("[1]", "fingerprint.json", "not an object"),
    ):
        stamp.write_text(damage)
        refused(store.folder, FP, *says)
    with open(stamp, "wb") as fh:
        fh.truncate(17 * 2**20)
    refused(store.folder, FP, "more than this sweep writes")
    stamp.unlink()
    refused(store.folder, FP, "no fingerprint.json", "t0000-l000.npz")
    os.symlink(tmp_path / "elsewhere.json", stamp)
    (tmp_path / "elsewhere.json").write_text(text)
    refused(store.folder, FP, "symbolic link")
    os.symlink(store.folder, tmp_path / "link")
    refused(tmp_path / "link", FP, "symbolic link")
    (tmp_path / "plain").write_text("")
    refused(tmp_path / "plain", FP, "not a folder")
    # a units folder of an earlier sweep's unit files under the same names
    other = filled(tmp_path / "o", {**FP, "model": "other"})
    assert sweep_id(other.fingerprint) != sweep_id(FP)


def test_the_lock_names_the_holder_and_a_stale_one_is_taken_over(tmp_path) -> None:
    store = UnitStore(tmp_path / "u", FP, EXAMPLES)
    store.open(log=print)
    again = UnitStore(tmp_path / "u", FP, EXAMPLES)
    with pytest.raises(
        UnitsFolderBusy, match=f"in use .*pid {os.getpid()} on {socket.gethostname()}"
    ):
        again.open(log=print)
    with pytest.raises(UnitsFolderBusy):  # a shard conflicts with a whole run, too
        again.open("lock.part-0-of-2", log=print)
    store.close()
    assert not (store.folder / "lock").exists()
    shards = [UnitStore(tmp_path / "u", FP, EXAMPLES) for _ in range(2)]
    for i, shard in enumerate(shards):  # shards of one sweep share the folder
        shard.open(f"lock.part-{i}-of-2", log=print)
    with pytest.raises(UnitsFolderBusy, match="lock.part-0-of-2"):
        again.open(log=print)
    for shard in shards:
        shard.close()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has ended
    lock = store.folder / "lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "?"}))
    lines: list[str] = []
    again.open(log=lines.append)
    host = socket.gethostname()
    assert lines == [f"taking over lock, the stale lock of pid {pid} on {host} (no longer running)"]
    again.close()
    # a pid that lives again in another process (a restarted container, a reused pid): stale
    parent = os.getppid()
    for pid, ticks in ((parent, 1), (os.getpid(), None)):
        lock.write_text(json.dumps({"host": host, "pid": pid, "ticks": ticks}))
        lines.clear()
        again.open(log=lines.append)
        assert lines and f"pid {pid}" in lines[0] and "stale" in lines[0]
        again.close()
    for text, says in (
        (json.dumps({"host": "elsewhere", "pid": pid}), "if that run is gone, delete"),
        ("garbage", "unreadable"),
    ):
        lock.write_text(text)
        with pytest.raises(UnitsFolderBusy, match=says):
            again.open(log=print)
        assert lock.read_text() == text  # not taken, not removed
    lock.unlink()


def test_remove_deletes_only_what_the_sweep_wrote_never_through_a_link(tmp_path) -> None:
    store = filled(tmp_path / "u")
    outside = tmp_path / "outside.npz"
    outside.write_bytes(b"mine")
    store.unit_path(Unit(1, 1)).unlink()
    os.symlink(outside, store.unit_path(Unit(1, 1)))
    (store.folder / "notes.txt").write_text("mine")
    (store.folder / ".t0000-l000.npz.0123456789ab.tmp").write_bytes(b"")  # a killed write
    store.open(log=print)
    lines: list[str] = []
    store.remove(UNITS, lines.append)
    assert sorted(os.listdir(store.folder)) == ["notes.txt", "t0001-l001.npz"]
    assert outside.read_bytes() == b"mine" and "kept" in lines[0] and "notes.txt" in lines[0]
    (store.folder / "notes.txt").unlink()
    (store.folder / "t0001-l001.npz").unlink()
    filled(tmp_path / "u").remove(UNITS, lines.append)
    assert not (tmp_path / "u").exists()  # all its own: the folder goes too
