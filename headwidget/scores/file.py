"""The HeadScores file: an uncompressed NumPy ``.npz`` (zip) archive, read as untrusted data.

Reading checks every size before reading the bytes it describes: member sizes from the zip's
central directory, array shapes and dtypes from each ``.npy`` header, then the JSON header's
shape. Whatever is wrong raises :class:`ScoresFileError`, naming the file and the problem.
Writing goes to a temporary file in the same folder that replaces the target only when complete.

>>> arrays, header = read_archive(Path("scores.npz"))  # doctest: +SKIP
>>> arrays["values"].shape, header["tasks"]             # doctest: +SKIP
((2, 30, 9), ['copying', 'counting'])
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import tokenize
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "MAX_CELLS",
    "json_depth",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "ScoresFileError",
    "header_field",
    "read_archive",
    "read_arrays",
    "write_archive",
    "write_atomic",
]

MAX_HEADER_BYTES = 64 * 2**20
"""Largest JSON header (UTF-8 bytes) :func:`read_archive` accepts: 64 MiB."""
MAX_CELLS = 2**28
"""Most cells (tasks x layers x heads) ``values`` and ``exact`` may have: 268,435,456; also the
most the per-example arrays (``effects_<t>``, ``clean_<t>``, format 3) may have together."""
MAX_JSON_DEPTH = 100
"""Deepest nesting of lists and objects accepted in the JSON header."""

_NPY_HEADER_LIMIT = 10_000  # numpy's own default limit on a .npy header's text
_NPY_MAGIC = b"\x93NUMPY"


class ScoresFileError(ValueError):
    """A file that is not a valid HeadScores file (truncated, corrupt, too large, or another
    kind of file). ``path`` and ``problem`` are attributes too.

    >>> str(ScoresFileError("x.npz", "the file is empty"))
    "'x.npz' is not a HeadScores file: the file is empty"
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path!r} is not a HeadScores file: {problem}")


def write_archive(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and the JSON ``header`` (as the uint8 array ``header``) to ``path``
    atomically: into a new file in the same folder, then ``os.replace``. If anything fails
    part-way, an existing file at ``path`` is left as it was."""
    path = Path(path)
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda fh: np.savez(fh, header=encoded, **arrays))
    return path


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file whole or not at all: ``write(fh)`` fills a new file next to ``path``, which
    is synced and then renamed over ``path`` (``os.replace``); on any error it is removed and
    an existing ``path`` is left as it was.

    >>> write_atomic(Path(tmp) / "part.bin", lambda fh: fh.write(b"done"))  # doctest: +SKIP
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never follow or reuse an existing file; mode 0o666 lets the umask apply as usual
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read_archive(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays ``values`` (and ``exact`` when present) and the parsed JSON header of the
    HeadScores file at ``path``, each checked against the format and its size limits.

    Raises :class:`ScoresFileError` for anything but a well-formed file, ``FileNotFoundError``
    when there is no file.
    """
    return _guarded(path, _read, "HeadScores")


ArrayCheck = Callable[[str, tuple[int, ...], np.dtype], None]
"""``check(name, shape, dtype)``: raises :class:`ScoresFileError` for an array a format does
not allow, from its ``.npy`` header alone, before its data is read."""


def read_arrays(
    path: Path,
    check: ArrayCheck,
    kind: str = "HeadScores",
    check_header: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every array of the ``.npz`` archive at ``path`` and its parsed JSON ``header``, read with
    the same discipline as :func:`read_archive` (sizes from the zip directory and each ``.npy``
    header checked before any data is read, :data:`MAX_HEADER_BYTES`, :data:`MAX_CELLS` cells
    an array and :data:`MAX_JSON_DEPTH`), for formats other than HeadScores': ``check`` says
    which arrays and shapes are allowed, ``check_header`` (given the parsed header, read
    first) which headers. ``kind`` names the file in errors.

    >>> arrays, header = read_arrays(Path("paths.npz"), check, "HeadPaths")  # doctest: +SKIP
    """

    def read(fh: io.BufferedReader, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        with _zip(fh, path, kind) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "header.npy" not in members:
                raise ScoresFileError(path, "it has no 'header' array")
            header = _parse_header(
                _read_member(archive, members["header.npy"], path, "header"), path
            )
            if check_header is not None:
                check_header(header)
            arrays = {}
            for name, info in sorted(members.items()):
                if not name.endswith(".npy") or not name[:-4].isascii() or len(name) > 64:
                    raise ScoresFileError(path, f"unexpected member {name[:60]!r}")
                if name != "header.npy":
                    arrays[name[:-4]] = _read_member(archive, info, path, name[:-4], check=check)
        return arrays, header

    return _guarded(path, read, kind)


def _guarded(
    path: Path,
    read: Callable[[io.BufferedReader, Path], tuple[dict[str, np.ndarray], dict[str, Any]]],
    kind: str,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``read(fh, path)`` on the open file, every failure of a damaged file a ScoresFileError."""
    try:
        with open(path, "rb") as fh:
            return read(fh, path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {kind} file at {str(path)!r}") from None
    except IsADirectoryError:
        raise ScoresFileError(path, "it is a directory") from None
    except ScoresFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as err:
        raise ScoresFileError(path, f"the zip archive is damaged ({err})") from None
    except (OSError, ValueError, OverflowError) as err:
        # struct errors are ValueErrors; an OSError here is a read of damaged data
        raise ScoresFileError(path, f"the zip archive is damaged ({err})") from None


def _zip(fh: io.BufferedReader, path: Path, kind: str) -> zipfile.ZipFile:
    """The open file as a zip archive, after checking that it is one."""
    start = fh.read(len(_NPY_MAGIC))
    if not start:
        raise ScoresFileError(path, "the file is empty")
    if start == _NPY_MAGIC:
        arrays = "'values' and 'header'" if kind == "HeadScores" else "and a 'header'"
        raise ScoresFileError(
            path,
            f"it holds a single NumPy array (.npy), not the .npz archive of arrays {arrays};"
            f" save with {kind}.save",
        )
    fh.seek(0)
    if not zipfile.is_zipfile(fh):
        raise ScoresFileError(
            path, f"it is not a .npz (zip) archive; {kind} files are written by {kind}.save"
        )
    fh.seek(0)
    return zipfile.ZipFile(fh)


def _read(fh: io.BufferedReader, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with _zip(fh, path, "HeadScores") as archive:
        members = {info.filename: info for info in archive.infolist()}
        if "header.npy" not in members or "values.npy" not in members:
            found = sorted(name.removesuffix(".npy") for name in members)
            shown = found[:20] + (["..."] if len(found) > 20 else [])
            raise ScoresFileError(path, f"expected arrays 'values' and 'header', found {shown}")
        header_array = _read_member(archive, members["header.npy"], path, "header")
        values = _read_member(archive, members["values.npy"], path, "values")
        arrays = {"values": values}
        if "exact.npy" in members:
            arrays["exact"] = _read_member(
                archive, members["exact.npy"], path, "exact", values.shape
            )
        _read_examples(archive, members, path, values.shape, arrays)
    return arrays, _parse_header(header_array, path)


def _read_examples(
    archive: zipfile.ZipFile,
    members: Mapping[str, zipfile.ZipInfo],
    path: Path,
    shape: tuple[int, ...],
    arrays: dict[str, np.ndarray],
) -> None:
    """Version 3's per-example arrays ``effects_<t>`` (float ``[layers, heads, examples]``)
    and ``clean_<t>`` (float ``[examples]``) of task index ``t``, each checked (name, dtype,
    shape, the cells of all of them together) before its data is read."""
    total = 0
    for kind in ("effects", "clean"):
        for name in sorted(members):
            if not (name.startswith(f"{kind}_") and name.endswith(".npy")):
                continue
            index = name[len(kind) + 1 : -4]
            if not (index.isdigit() and index.isascii() and len(index) < 10):
                raise ScoresFileError(path, f"unexpected array {name[:60]!r}")
            if int(index) >= shape[0]:
                raise ScoresFileError(
                    path, f"array {name!r} is for task {int(index)}, but there are {shape[0]}"
                )
            if kind == "effects":
                expected: tuple[int, ...] = (*shape[1:], -1)
            else:
                effects = arrays.get(f"effects_{int(index)}")
                expected = (-1,) if effects is None else (effects.shape[2],)
            key = f"{kind}_{int(index)}"
            array = _read_member(archive, members[name], path, key, expected, MAX_CELLS - total)
            total += array.size
            arrays[key] = array


def _read_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    path: Path,
    name: str,
    shape_of_values: tuple[int, ...] | None = None,
    max_cells: int = MAX_CELLS,
    check: ArrayCheck | None = None,
) -> np.ndarray:
    """One array, after checking its declared size, dtype and shape against the format
    (HeadScores', or ``check``'s and the size limits)."""
    if info.flag_bits & 0x1:
        raise ScoresFileError(path, f"array {name!r} is encrypted")
    limit = (MAX_HEADER_BYTES if name == "header" else MAX_CELLS * 8) + _NPY_HEADER_LIMIT + 16
    if info.file_size > limit:
        raise ScoresFileError(
            path,
            f"array {name!r} is {info.file_size:,} bytes, over the limit of {limit:,}"
            " (see headwidget.scores.file)",
        )
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                read_header = np.lib.format.read_array_header_1_0
            elif version == (2, 0):
                read_header = np.lib.format.read_array_header_2_0
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = read_header(member, max_header_size=_NPY_HEADER_LIMIT)
        except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as err:
            # numpy parses the header's text with ast and, for old headers, tokenize
            raise ScoresFileError(path, f"array {name!r} has a bad .npy header ({err})") from None
        offset = member.tell()
        if check is None or name == "header":
            _check_array(path, name, shape, dtype, shape_of_values, max_cells)
        else:
            if dtype.hasobject or math.prod(shape) > max_cells:
                raise ScoresFileError(
                    path, f"{name!r} has dtype {dtype} and shape {shape}: not allowed or too big"
                )
            check(name, shape, dtype)
        n_bytes = math.prod(shape) * dtype.itemsize
        if offset + n_bytes != info.file_size:
            raise ScoresFileError(
                path,
                f"array {name!r} declares {n_bytes:,} bytes of data but its member holds"
                f" {info.file_size - offset:,} (truncated or damaged)",
            )
        data = member.read(n_bytes)
        if len(data) != n_bytes:
            raise ScoresFileError(path, f"array {name!r} is truncated")
        # read once more so that zipfile checks the member's CRC at its end
        member.read(1)
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _check_array(
    path: Path,
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    shape_of_values: tuple[int, ...] | None,
    max_cells: int = MAX_CELLS,
) -> None:
    if name == "header":
        if dtype != np.uint8 or len(shape) != 1:
            raise ScoresFileError(
                path, f"'header' must be a 1-D uint8 array, got {dtype} of shape {shape}"
            )
        if shape[0] > MAX_HEADER_BYTES:
            raise ScoresFileError(
                path, f"the header is {shape[0]:,} bytes, over the limit of {MAX_HEADER_BYTES:,}"
            )
        return
    if name == "values" and (dtype.kind != "f" or len(shape) != 3):
        raise ScoresFileError(
            path,
            f"'values' must be a 3-D float array [tasks, layers, heads], got {dtype} of shape"
            f" {shape}",
        )
    if name == "exact" and (dtype != np.bool_ or tuple(shape) != shape_of_values):
        raise ScoresFileError(
            path,
            f"'exact' must be a bool array of the shape of 'values' {shape_of_values}, got"
            f" {dtype} of shape {shape}",
        )
    if name.startswith(("effects_", "clean_")):
        assert shape_of_values is not None
        fits = len(shape) == len(shape_of_values) and all(
            want in (-1, got) for want, got in zip(shape_of_values, shape, strict=True)
        )
        if dtype.kind != "f" or not fits:
            wanted = tuple("n" if n == -1 else n for n in shape_of_values)
            raise ScoresFileError(
                path,
                f"{name!r} must be a float array of shape {wanted}, got {dtype} of shape {shape}",
            )
    cells = math.prod(shape)
    if cells > max_cells:
        together = " (all per-example arrays together)" if max_cells < MAX_CELLS else ""
        raise ScoresFileError(
            path,
            f"{name!r} has shape {shape}: {cells:,} cells, over the limit of {MAX_CELLS:,}"
            + together,
        )


# -- the JSON header -------------------------------------------------------------------------

_NONFINITE = {"nan", "inf", "-inf"}


def _parse_header(array: np.ndarray, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(array.tobytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ScoresFileError(path, f"the header is not UTF-8 text ({err})") from None
    except RecursionError:
        raise ScoresFileError(
            path, f"the header's JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as err:  # JSONDecodeError, and integers too long to convert
        raise ScoresFileError(path, f"the header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise ScoresFileError(path, f"the header is a JSON {type(header).__name__}, not an object")
    if json_depth(header) > MAX_JSON_DEPTH:
        raise ScoresFileError(
            path, f"the header's JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    return header


def json_depth(value: Any) -> int:
    """Nesting depth of lists and dicts in ``value``, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in item)
    return deepest


def header_field(header: Mapping[str, Any], key: str, kind: str, path: Path, default: Any) -> Any:
    """``header[key]`` checked to be of ``kind``: ``"str"``, ``"str list"``, ``"str map"``
    (str -> str), ``"category map"`` (str -> str or null), ``"float map"`` (str -> number or
    ``"nan"``/``"inf"``/``"-inf"``, returned as floats), ``"object"`` or ``"path list"`` (lists of
    str / int keys)."""
    if key not in header:
        if default is None:
            raise ScoresFileError(path, f"the header has no {key!r}")
        return default
    value = header[key]

    def wrong(expected: str) -> ScoresFileError:
        shown = repr(value) if len(repr(value)) < 60 else f"a {type(value).__name__}"
        return ScoresFileError(path, f"the header's {key!r} must be {expected}, got {shown}")

    if kind == "str":
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if kind == "object":
        if not isinstance(value, dict):
            raise wrong("an object")
        return value
    if kind in ("str list", "path list"):
        if not isinstance(value, list):
            raise wrong("a list")
        for item in value:
            ok = (
                isinstance(item, str)
                if kind == "str list"
                else isinstance(item, list)
                and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in item)
            )
            if not ok:
                raise wrong("a list of strings" if kind == "str list" else "a list of key paths")
        return value
    if not isinstance(value, dict):
        raise wrong("an object")
    if kind == "str map":
        if not all(isinstance(v, str) for v in value.values()):
            raise wrong("an object of strings")
        return value
    if kind == "category map":
        if not all(v is None or isinstance(v, str) for v in value.values()):
            raise wrong("an object of strings or null")
        return value
    assert kind == "float map", kind
    floats = {}
    for name, number in value.items():
        if isinstance(number, str) and number in _NONFINITE:
            floats[name] = float(number)
        elif isinstance(number, (int, float)) and not isinstance(number, bool):
            try:
                floats[name] = float(number)
            except OverflowError:
                raise wrong("an object of numbers that fit a float") from None
        else:
            raise wrong('an object of numbers (or "nan", "inf", "-inf")')
    return floats
