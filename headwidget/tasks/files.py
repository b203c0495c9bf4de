"""Tasks from the user's own data: JSONL and CSV files, pandas DataFrames, lists of dicts.

Every problem raises :class:`TaskDataError` naming the file and the 1-based line or row.

>>> tasks = load_tasks("my_tasks.jsonl")        # doctest: +SKIP
>>> rows = [{"task": "capitals", "prompt": "France ->", "answer": " Paris"}]
>>> load_tasks(rows)
[Task('capitals', 1 examples)]
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .task import Example, Task

if TYPE_CHECKING:
    import pandas

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "TaskDataError", "load_tasks"]


REQUIRED_COLUMNS = ("prompt", "answer")
OPTIONAL_COLUMNS = ("task", "category", "distractor", "description", "source")
_COLUMNS_HELP = (
    f"required columns: {', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}"
)

PathLike = Union[str, "os.PathLike[str]"]
TaskSource = Union[PathLike, "pandas.DataFrame", Sequence[Mapping[str, Any]]]


class TaskDataError(ValueError):
    """Bad task data. The message names the source (file, ``DataFrame`` or ``list``) and the
    1-based line or row, and says how to fix it.

    ``source`` and ``row`` (``None`` when the problem is not tied to one row) are attributes too.
    """

    def __init__(self, source: str, row: str | None, problem: str) -> None:
        self.source = source
        self.row = row
        where = f"{source}, {row}" if row else source
        super().__init__(f"{where}: {problem}")


@dataclass
class _Row:
    where: str  # e.g. "line 3", "row 2 (index 'a')"
    values: dict[str, Any]


@dataclass
class _Table:
    label: str  # how errors name the source
    rows: list[_Row]
    columns: set[str] | None  # known up front for CSV and DataFrames; None for JSONL and lists
    default_name: str | None  # the task name when there is no task column (the file stem)


def load_tasks(
    source: TaskSource | Sequence[PathLike | pandas.DataFrame],
    *,
    task: str | None = None,
    category: str | None = None,
) -> list[Task]:
    """Tasks from your own data: a JSONL file, a CSV (or TSV) file, a pandas ``DataFrame``, a
    list of dicts, or a list of several files / DataFrames.

    Each row (line, record) has ``prompt`` and ``answer``, and optionally ``task``,
    ``category``, ``distractor`` (a plausible wrong answer, for the ``"logit_diff"`` metric) and
    ``description`` (shown in the widget's tooltip) and ``source`` (the word the operation acts
    on, for ``method="projection"``). ``answer`` is the exact continuation of
    ``prompt``: include the leading space most tokenizers expect (``" Paris"``, not ``"Paris"``).

    Rows are grouped into one :class:`Task` per ``task`` value, in order of first appearance.
    Without a ``task`` column all rows form one task named ``task`` (or, for a file, the file
    name without its extension); with one, ``task=`` keeps only that task. Given a list of
    files / DataFrames, ``task=`` only selects: it keeps the task of that name from whichever
    source defines it (a file without a ``task`` column holds one task named after the file)
    and raises only if no source has it. ``category=`` is the category of tasks whose rows give
    none. A task's rows must agree on its category and description (empty cells are fine).

    Problems raise :class:`TaskDataError` naming the file and the 1-based line or row: missing
    columns, empty prompts or answers, bytes that are not UTF-8, invalid or too deeply nested
    JSON, a directory where a file should be, a task given two categories, or two sources
    defining the same task.

    >>> rows = [{"task": "capitals", "prompt": "France ->", "answer": " Paris"},
    ...         {"task": "capitals", "prompt": "Japan ->", "answer": " Tokyo"}]
    >>> load_tasks(rows, category="Knowledge")
    [Task('capitals', 2 examples, category='Knowledge')]
    """
    many = _is_many_sources(source)
    sources = source if many else [source]
    tables = [_read_source(item) for item in sources]  # type: ignore[union-attr]
    tasks: list[Task] = []
    defined_in: dict[str, str] = {}
    available: set[str] = set()
    for table in tables:
        built_tasks, names = _group(table, task, category, name_untitled=not many)
        available.update(names)
        for built in built_tasks:
            if built.name in defined_in:
                raise TaskDataError(
                    table.label,
                    None,
                    f"task {built.name!r} is also defined in {defined_in[built.name]}; task names"
                    " must be unique across sources: rename one, or put both in one file",
                )
            defined_in[built.name] = table.label
            tasks.append(built)
    if task is not None and not tasks:
        label = ", ".join(table.label for table in tables)
        raise TaskDataError(
            label, None, f"no task named {task!r}; the tasks are {sorted(available)}"
        )
    return tasks


def _is_dataframe(obj: Any) -> bool:
    # Checked by type name so that pandas is only imported by people who use it.
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "columns")


def _is_many_sources(source: Any) -> bool:
    if isinstance(source, (str, os.PathLike, Mapping)) or _is_dataframe(source):
        return False
    if not isinstance(source, Sequence) or not source:
        return False
    kinds = {
        "file" if isinstance(item, (str, os.PathLike)) or _is_dataframe(item) else "row"
        for item in source
    }
    if kinds == {"file", "row"}:
        raise TypeError(
            "load_tasks() takes either a list of rows (dicts) or a list of files / DataFrames,"
            " not a mix of both"
        )
    return kinds == {"file"}


def _read_source(source: Any) -> _Table:
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source))
    if _is_dataframe(source):
        return _read_dataframe(source)
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, Mapping)):
        rows = []
        for i, item in enumerate(source, start=1):
            if not isinstance(item, Mapping):
                raise TaskDataError(
                    "list",
                    f"row {i}",
                    f"expected a dict with 'prompt' and 'answer', got {type(item).__name__}",
                )
            rows.append(_Row(f"row {i}", _normalize_keys(item, "list", f"row {i}")))
        if not rows:
            raise TaskDataError("list", None, f"no rows; give at least one ({_COLUMNS_HELP})")
        return _Table("list", rows, None, None)
    raise TypeError(
        "load_tasks() takes a .jsonl / .csv / .tsv file path, a pandas DataFrame, a list of dicts"
        f" or a list of files / DataFrames, got {type(source).__name__}"
    )


def _normalize_keys(item: Mapping[str, Any], label: str, where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in item.items():
        name = str(key).strip().lower()
        if name in values:
            raise TaskDataError(label, where, f"field {name!r} is given twice")
        values[name] = value
    return values


def _read_file(path: Path) -> _Table:
    label = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv", ".tsv"):
        raise TaskDataError(
            label,
            None,
            f"unsupported file type {path.suffix!r}; use .jsonl (one JSON object per line),"
            " .csv or .tsv",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no task file at {label!r}") from None
    except IsADirectoryError:
        raise TaskDataError(
            label, None, "is a directory, not a file; pass the path of the task file in it"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        start = err.start + bom
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise TaskDataError(
            label,
            f"line {line}",
            f"byte 0x{data[start]:02x} at column {column} is not valid UTF-8; save the file"
            " with UTF-8 encoding",
        ) from None
    # Byte order marks beyond the first (which utf-8-sig removes), as some tools write: one left
    # there would hide the first column's name or break the first JSON line.
    text = text.lstrip("\ufeff")
    if suffix in (".jsonl", ".ndjson"):
        rows = _parse_jsonl(text, label)
        columns = None
    else:
        rows, columns = _parse_csv(text, label, "\t" if suffix == ".tsv" else ",")
    if not rows:
        raise TaskDataError(label, None, f"the file has no rows ({_COLUMNS_HELP})")
    return _Table(label, rows, columns, path.stem)


def _parse_jsonl(text: str, label: str) -> list[_Row]:
    rows = []
    # Split on "\n" only: str.splitlines() also splits on U+2028, U+2029 and U+0085, which JSON
    # allows raw inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskDataError(
                label,
                where,
                f"invalid JSON ({err.msg} at column {err.colno}); each line must be one JSON"
                ' object like {"prompt": "France ->", "answer": " Paris"}',
            ) from None
        except RecursionError:
            raise TaskDataError(
                label, where, "the JSON is nested too deeply to read; give one flat JSON object"
            ) from None
        except ValueError as err:  # e.g. an integer with more digits than Python converts
            raise TaskDataError(label, where, f"invalid JSON ({err})") from None
        if not isinstance(item, dict):
            raise TaskDataError(label, where, f"expected a JSON object, got {type(item).__name__}")
        rows.append(_Row(where, _normalize_keys(item, label, where)))
    return rows


#: How to quote a CSV cell, for the errors.
_QUOTING = 'quote a whole cell as "...", and double every quote inside it ("")'


def _parse_csv(text: str, label: str, delimiter: str) -> tuple[list[_Row], set[str]]:
    # strict: a quote left open (which would take every later row into one cell) or text after
    # a closing quote is an error, not silently read
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return [], set()
    except csv.Error as err:
        raise _csv_error(err, label, reader.line_num, 1) from None
    names = [name.strip().lower() for name in header]
    _check_columns(names, label, "line 1")
    rows = []
    end = reader.line_num
    try:
        for record in reader:
            # A quoted cell can span lines; errors point at the line where the row starts.
            where = f"line {end + 1}"
            end = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(names):
                raise TaskDataError(
                    label,
                    where,
                    f"{len(record)} cells but the header has {len(names)} columns; quote cells"
                    " that contain the delimiter",
                )
            rows.append(_Row(where, dict(zip(names, record, strict=False))))
    except csv.Error as err:
        raise _csv_error(err, label, reader.line_num, end + 1) from None
    return rows, set(names)


def _csv_error(err: csv.Error, label: str, line: int, start: int) -> TaskDataError:
    """The error for a malformed CSV row: ``line`` is where the reader stopped, ``start`` the
    line where the row began (where an unterminated quote opened)."""
    if "unexpected end of data" in str(err):
        return TaskDataError(
            label, f"line {start}", f"a quoted cell starting in this row never ends; {_QUOTING}"
        )
    if "expected after" in str(err):
        return TaskDataError(
            label, f"line {line}", f"text after the closing quote of a cell; {_QUOTING}"
        )
    return TaskDataError(label, f"line {line}", f"malformed CSV ({err}); {_QUOTING}")


def _check_columns(names: list[str], label: str, header_row: str | None) -> None:
    """Reject repeated or missing columns. ``header_row`` is the header's line in a file
    (``None`` for a DataFrame, whose columns are not a line)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TaskDataError(label, header_row, f"column(s) {repeated} appear more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        place = " in the header" if header_row is not None else ""
        raise TaskDataError(
            label,
            header_row,
            f"missing column(s) {missing}{place}; found {names} ({_COLUMNS_HELP})",
        )


def _read_dataframe(frame: pandas.DataFrame) -> _Table:
    label = "DataFrame"
    names = [str(column).strip().lower() for column in frame.columns]
    _check_columns(names, label, None)
    rows = []
    default_index = list(frame.index) == list(range(len(frame)))
    for position, (label_, record) in enumerate(
        zip(frame.index, frame.itertuples(index=False, name=None), strict=True), start=1
    ):
        where = f"row {position}" if default_index else f"row {position} (index {label_!r})"
        values = {name: _missing_to_none(value) for name, value in zip(names, record, strict=True)}
        rows.append(_Row(where, values))
    if not rows:
        raise TaskDataError(label, None, f"the DataFrame has no rows ({_COLUMNS_HELP})")
    return _Table(label, rows, set(names), None)


def _missing_to_none(value: Any) -> Any:
    """``None`` for pandas' missing-value markers (``NaN``, ``pd.NA`` in string and nullable
    dtypes, ``NaT``); other values unchanged."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def _cell(row: _Row, table: _Table, name: str, *, required: bool = False) -> str | None:
    """The text of one cell; ``None`` for a missing or empty optional cell."""
    value = row.values.get(name)
    if value is not None and not isinstance(value, str):
        if isinstance(value, float) and math.isnan(value):  # an empty cell, e.g. from pandas
            value = None
        elif isinstance(value, bool) or not _is_integer(value):
            raise TaskDataError(
                table.label,
                row.where,
                f"{name!r} must be text, got {type(value).__name__} {value!r}",
            )
        else:
            value = str(value)
    if value is None or not value.strip():
        if not required:
            return None
        if name not in row.values and (table.columns is None or name not in table.columns):
            problem = f"missing {name!r} ({_COLUMNS_HELP})"
        else:
            problem = f"empty {name!r}; every row needs a non-blank {name}"
        raise TaskDataError(table.label, row.where, problem)
    return value


def _is_integer(value: Any) -> bool:
    # numbers.Integral covers numpy integers, which pandas gives for integer columns.
    return isinstance(value, numbers.Integral)


def _group(
    table: _Table, only: str | None, category: str | None, *, name_untitled: bool
) -> tuple[list[Task], set[str]]:
    """The tasks of one source (only the one named ``only`` if given) and the names of all its
    tasks. ``name_untitled``: ``only`` names the task of a source without a ``task`` column
    (one source given); otherwise such a file's task is its stem and ``only`` selects."""
    has_task_column = (
        "task" in table.columns
        if table.columns is not None
        else any("task" in row.values for row in table.rows)
    )
    if not has_task_column:
        name = (only if name_untitled else None) or table.default_name
        if name is None:
            hint = (
                "name the task with load_tasks(..., task='name')"
                if name_untitled
                else "load it on its own with load_tasks(..., task='name') to name its task"
            )
            raise TaskDataError(table.label, None, f"no 'task' column; add one, or {hint}")
        if only is not None and name != only:
            return [], {name}
    names: set[str] = set() if has_task_column else {name}
    examples: dict[str, list[Example]] = {}
    # task -> (value, where it was first given) for category and description
    given: dict[str, dict[str, tuple[str, str]]] = {}
    for row in table.rows:
        if has_task_column:
            raw = _cell(row, table, "task", required=True)
            assert raw is not None
            name = raw.strip()
            names.add(name)
            if only is not None and name != only:
                continue
        assert name is not None
        prompt = _cell(row, table, "prompt", required=True)
        answer = _cell(row, table, "answer", required=True)
        distractor = _cell(row, table, "distractor")
        source = _cell(row, table, "source")
        assert prompt is not None and answer is not None
        examples.setdefault(name, []).append(Example(prompt, answer, distractor, source))
        seen = given.setdefault(name, {})
        for field_name in ("category", "description"):
            value = _cell(row, table, field_name)
            if value is None:
                continue
            value = value.strip()
            if field_name not in seen:
                seen[field_name] = (value, row.where)
            elif seen[field_name][0] != value:
                first, first_where = seen[field_name]
                raise TaskDataError(
                    table.label,
                    row.where,
                    f"task {name!r} has {field_name} {value!r} here but {first!r} at"
                    f" {first_where}; all rows of a task must give the same {field_name} (or"
                    " leave it empty). If these are two different tasks, give them different"
                    " names",
                )
    tasks = []
    for name, items in examples.items():
        seen = given.get(name, {})
        task_category = seen["category"][0] if "category" in seen else None
        if category is not None:
            if task_category is not None and task_category != category:
                raise TaskDataError(
                    table.label,
                    seen["category"][1],
                    f"task {name!r} has category {task_category!r} in the data but"
                    f" category={category!r} was passed; drop one of them",
                )
            task_category = category
        description = seen["description"][0] if "description" in seen else ""
        tasks.append(Task(name, items, category=task_category, description=description))
    return tasks, names
