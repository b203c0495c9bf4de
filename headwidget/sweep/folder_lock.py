"""The lock file that makes a units folder one run's at a time.

A run takes the folder by creating its lock file exclusively (written whole to a temporary
file, then hard-linked to its name, so that it is created complete or not at all): ``lock`` for
a run that writes ``OUT.npz``, ``lock.part-I-of-N`` for shard I of N. Shards of one sweep share
the folder (each has its own lock); a whole run excludes every other. The lock holds the host,
the process id (and, on Linux, the process's start time, so that a reused pid is told apart),
when it started and what it writes. A second run on the same output fails at once with
:class:`UnitsFolderBusy` naming the first. A lock left by a process that is no longer running on
this host is stale: it is taken over (and the take-over said in the log). A lock of another host
cannot be checked: the message says which file to delete once that run is gone.

>>> lock = acquire(Path("out.npz.units"), "lock", "out.npz", log=print)  # doctest: +SKIP
>>> lock.release()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .unit_file import UnitsFolderError

__all__ = [
    "LOCK",
    "FolderLock",
    "UnitsFolderBusy",
    "acquire",
    "check_free",
    "create_exclusive",
    "is_lock_name",
    "lock_name",
]

LOCK = "lock"
"""The lock file of a run that writes the whole output."""
_HELD: set[str] = set()  # the lock files this process holds
_LOCK_NAME = re.compile(r"lock(\.part-\d{1,12}-of-\d{1,12})?")
_LIMIT = 4096  # bytes: a lock is a short JSON object


class UnitsFolderBusy(UnitsFolderError):
    """Another run holds the units folder (or the part of it this run needs)."""


def lock_name(shard: tuple[int, int] | None) -> str:
    """The lock file of a run writing the whole output (None) or shard ``(I, N)``.

    >>> lock_name((1, 4))
    'lock.part-1-of-4'
    """
    return LOCK if shard is None else f"{LOCK}.part-{shard[0]}-of-{shard[1]}"


def is_lock_name(name: str) -> bool:
    """Whether ``name`` is the name of a lock file."""
    return _LOCK_NAME.fullmatch(name) is not None


def _conflict(a: str, b: str) -> bool:
    return a == b or LOCK in (a, b)


def create_exclusive(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text``, complete, unless something is there already (even a
    dangling link); return whether it was created."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: create it in place
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return True
    finally:
        temp.unlink(missing_ok=True)


@dataclass
class FolderLock:
    """A lock this process holds; :meth:`release` removes it (only while it is still ours)."""

    path: Path
    text: str

    def release(self) -> None:
        _HELD.discard(str(self.path))
        try:
            if not self.path.is_symlink() and self.path.read_text("utf-8") == self.text:
                self.path.unlink()
        except OSError:
            pass


def acquire(folder: Path, name: str, what: str, log: Callable[[str], None]) -> FolderLock:
    """Take the lock ``name`` of ``folder`` for a run writing ``what``, taking over stale locks
    (said in ``log``); :class:`UnitsFolderBusy` when a live run holds it or a conflicting one."""
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": started, "what": what}
    holder["ticks"] = _start_ticks(os.getpid())
    path = folder / name
    lock = FolderLock(path, json.dumps(holder))
    for _ in range(5):
        if create_exclusive(path, lock.text):
            _HELD.add(str(path))
            break
        _clear_if_stale(path, log)
    else:
        raise UnitsFolderBusy(f"{folder}: could not take {name} (other runs keep taking it)")
    try:
        _check_others(folder, name, log)
    except BaseException:
        lock.release()
        raise
    return lock


def check_free(folder: Path, name: str) -> None:
    """Raise :class:`UnitsFolderBusy` when a live run holds a lock of ``folder`` that the lock
    ``name`` conflicts with (a check before loading a model; :func:`acquire` decides)."""
    if folder.is_dir() and not folder.is_symlink():
        _check_others(folder, name, None)


def _check_others(folder: Path, name: str, log: Callable[[str], None] | None) -> None:
    for other in sorted(os.listdir(folder)):
        if other != name and is_lock_name(other) and _conflict(other, name):
            _clear_if_stale(folder / other, log)
    if log is None and os.path.lexists(folder / name):
        _clear_if_stale(folder / name, None)


def _clear_if_stale(path: Path, log: Callable[[str], None] | None) -> None:
    """Remove the lock ``path`` if its process is gone (``log`` None: only check); raise
    :class:`UnitsFolderBusy` when it is held."""
    try:
        if path.is_symlink():
            raise OSError("a symbolic link")
        with open(path, "rb") as fh:
            text = fh.read(_LIMIT + 1).decode("utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError):
        text = ""
    holder = _parse(text)
    if holder is None:
        raise UnitsFolderBusy(
            f"{path.parent} is locked by {path.name}, which is unreadable; if no headwidget run"
            f" uses this folder, delete {path}"
        )
    who = f"pid {holder['pid']} on {holder['host']}"
    if not _gone(holder, path):
        raise UnitsFolderBusy(
            f"{path.parent} is in use by another headwidget run ({who}, writing"
            f" {str(holder.get('what', '?'))[:200]}, since {str(holder.get('started', '?'))[:40]});"
            f" wait for it to finish or write to another output (if that run is gone, delete"
            f" {path})"
        )
    if log is None:
        return
    aside = path.with_name(f".{path.name}.stale-{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another run took it over first
    try:
        if aside.read_text("utf-8") == text:
            log(f"taking over {path.name}, the stale lock of {who} (no longer running)")
        else:  # a fresh lock was moved aside by mistake: put it back
            with contextlib.suppress(OSError):
                os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _parse(text: str) -> dict[str, Any] | None:
    try:
        holder = json.loads(text) if len(text) <= _LIMIT else None
    except ValueError:
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("host"), str):
        return None
    pid = holder.get("pid")
    return holder if isinstance(pid, int) and not isinstance(pid, bool) else None


def _gone(holder: dict[str, Any], path: Path) -> bool:
    """Whether the process that wrote the lock ``path`` (``holder``) is known to be gone."""
    pid = holder["pid"]
    if holder["host"] != socket.gethostname() or os.name == "nt":
        return False
    if pid == os.getpid():  # ours if we hold it; else an earlier process that had our pid
        return str(path) not in _HELD
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return True
    except OSError:  # it exists, but belongs to someone else
        pass
    ticks = holder.get("ticks")
    return isinstance(ticks, int) and _start_ticks(pid) not in (None, ticks)  # a reused pid


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read(4096).rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of proc(5), counted after the command's ")"
    except (OSError, IndexError, ValueError):
        return None
