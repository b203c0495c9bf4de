"""Task / Example and the loaders for the user's own data (JSONL, CSV, DataFrame, list)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from headwidget import Example, Task, TaskDataError, load_tasks

ROWS = [
    {"task": "capitals", "category": "Knowledge", "prompt": "France ->", "answer": " Paris"},
    {"task": "capitals", "prompt": "Japan ->", "answer": " Tokyo", "distractor": " Kyoto"},
    {"task": "copy", "category": "Algorithmic", "prompt": "cat ->", "answer": " cat"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def check_loaded(tasks: list[Task]) -> None:
    assert [task.name for task in tasks] == ["capitals", "copy"]
    capitals, copy = tasks
    assert capitals.category == "Knowledge" and copy.category == "Algorithmic"
    assert capitals.examples == [
        Example("France ->", " Paris"),
        Example("Japan ->", " Tokyo", " Kyoto"),
    ]
    assert copy.examples == [Example("cat ->", " cat")]


# -- Task / Example ----------------------------------------------------------------------------


def test_task_accepts_pairs_triples_dicts_and_examples():
    task = Task(
        "t",
        [("a", " b"), ("c", " d", " e"), {"prompt": "f", "answer": " g"}, Example("h", " i")],
        category="Knowledge",
        description="demo",
    )
    assert [e.answer for e in task.examples] == [" b", " d", " g", " i"]
    assert task.examples[1].distractor == " e"
    assert len(task) == 4 and task.description == "demo"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "examples": []}, "non-empty string"),
        ({"name": "t", "examples": [("p", "")]}, "empty answer"),
        ({"name": "t", "examples": [{"prompt": "p"}]}, "missing key"),
        ({"name": "t", "examples": [42]}, "expected a"),
        ({"name": "t", "examples": [], "category": ""}, "category"),
    ],
)
def test_task_rejects_bad_input(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Task(**kwargs)


# -- the four loaders --------------------------------------------------------------------------


def test_load_jsonl(tmp_path):
    check_loaded(load_tasks(write_jsonl(tmp_path / "mine.jsonl", ROWS)))


def test_load_csv(tmp_path):
    path = tmp_path / "mine.csv"
    # Leading spaces in answers are kept; an empty cell means "not given".
    path.write_text(
        "task,category,prompt,answer,distractor\n"
        "capitals,Knowledge,France ->, Paris,\n"
        "capitals,,Japan ->, Tokyo, Kyoto\n"
        "\n"
        "copy,Algorithmic,cat ->, cat,\n",
        encoding="utf-8",
    )
    check_loaded(load_tasks(path))


def test_load_tsv_and_string_path(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("prompt\tanswer\nFrance ->\t Paris\n", encoding="utf-8")
    (task,) = load_tasks(str(path))
    assert task.name == "mine" and task.examples == [Example("France ->", " Paris")]


def test_load_dataframe():
    pd = pytest.importorskip("pandas")
    check_loaded(load_tasks(pd.DataFrame(ROWS)))


def test_load_list_of_dicts():
    check_loaded(load_tasks(ROWS))


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    # JSON allows U+2028, U+2029 and U+0085 raw inside strings; only "\n" ends a line.
    path = tmp_path / "seps.jsonl"
    rows = [
        {"prompt": "one\u2028two", "answer": " a"},
        {"prompt": "three\u2029four\x85five", "answer": " b"},
    ]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    assert "\u2028" in lines[0]  # written raw, not escaped
    path.write_text(lines[0] + "\r\n" + lines[1] + "\n", encoding="utf-8", newline="")
    (task,) = load_tasks(path)
    assert [e.prompt for e in task.examples] == ["one\u2028two", "three\u2029four\x85five"]
    # Line numbers count "\n" only, so an error after such a line names the right one.
    path.write_text("\n".join([*lines, "", "{not json}"]) + "\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 4: invalid JSON"):
        load_tasks(path)


def test_csv_with_quoted_multiline_prompt_and_bom(tmp_path):
    path = tmp_path / "qa.csv"
    text = 'prompt,answer\n"Question: 2+2?\nAnswer:", 4\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (task,) = load_tasks(path)
    assert task.examples == [Example("Question: 2+2?\nAnswer:", " 4")]


@pytest.mark.parametrize(
    ("suffix", "text", "line", "problem"),
    [
        # an unterminated quote would take every later row into one cell
        (".csv", 'prompt,answer\nFrance ->, Paris\nJapan ->," Tokyo\nItaly ->, Rome\n', 3, "never"),
        (".csv", 'prompt,answer\n"France ->, Paris\nJapan ->, Tokyo', 2, "never"),
        (".tsv", 'prompt\tanswer\na\t b\n"c\t d\n', 3, "never"),
        # text after a closing quote (it was dropped into the cell without its quotes)
        (".csv", 'prompt,answer\na, b\n"Hello," she said ->, Hi\n', 3, "after"),
        (".tsv", 'prompt\tanswer\n"Hi," she said ->\t Hi\n', 2, "after"),
    ],
)
def test_csv_quotes_are_strict_and_errors_name_the_line(tmp_path, suffix, text, line, problem):
    path = tmp_path / f"quotes{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaskDataError) as info:
        load_tasks(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}: ") and "\n" not in message
    assert problem in message and '""' in message
    assert info.value.row == f"line {line}"


def test_no_task_column_uses_task_argument_or_file_stem(tmp_path):
    rows = [{"prompt": "France ->", "answer": " Paris"}]
    path = write_jsonl(tmp_path / "capitals.jsonl", rows)
    assert load_tasks(path)[0].name == "capitals"
    assert load_tasks(path, task="my capitals")[0].name == "my capitals"
    assert load_tasks(rows, task="x", category="Knowledge")[0].category == "Knowledge"
    with pytest.raises(TaskDataError, match=r"^list: no 'task' column.*task='name'"):
        load_tasks(rows)


def test_task_argument_selects_one_task_and_category_fills_in():
    (copy,) = load_tasks(ROWS, task="copy")
    assert copy.name == "copy"
    with pytest.raises(TaskDataError, match=r"no task named 'nope'.*\['capitals', 'copy'\]"):
        load_tasks(ROWS, task="nope")
    rows = [{"task": "t", "prompt": "p", "answer": " a"}]
    assert load_tasks(rows, category="Linguistic")[0].category == "Linguistic"


def test_description_is_kept_and_integer_answers_become_text():
    rows = [
        {"task": "add", "prompt": "2+2=", "answer": 4, "description": "Adds."},
        {"task": "add", "prompt": "3+3=", "answer": 6},
    ]
    (task,) = load_tasks(rows)
    assert task.description == "Adds." and task.examples[1].answer == "6"


def test_several_sources(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "answer": " x"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "q", "answer": " y"}])
    assert [task.name for task in load_tasks([first, second])] == ["a", "b"]


def test_task_argument_selects_across_several_sources(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [{"task": "t1", "prompt": "p", "answer": " x"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"task": "t2", "prompt": "q", "answer": " y"}])
    (found,) = load_tasks([first, second], task="t1")
    assert found.name == "t1" and found.examples == [Example("p", " x")]
    assert [t.name for t in load_tasks([first, second], task="t2")] == ["t2"]
    # Files without a task column hold one task named after the file: task= selects, not names.
    plain = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "r", "answer": " z"}])
    other = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "s", "answer": " w"}])
    assert [t.name for t in load_tasks([plain, other], task="c")] == ["c"]
    assert [t.name for t in load_tasks([first, plain], task="t1")] == ["t1"]
    with pytest.raises(TaskDataError) as info:
        load_tasks([first, second, plain], task="nope")
    message = str(info.value)
    assert message.startswith(f"{first}, {second}, {plain}: no task named 'nope'")
    assert message.endswith("the tasks are ['c', 't1', 't2']")


def test_several_sources_with_task_argument_still_reject_duplicates_and_untitled_frames(tmp_path):
    pd = pytest.importorskip("pandas")
    first = write_jsonl(tmp_path / "a.jsonl", [{"task": "t", "prompt": "p", "answer": " x"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"task": "t", "prompt": "q", "answer": " y"}])
    with pytest.raises(TaskDataError, match=rf"^{_re(second)}: task 't' is also defined in"):
        load_tasks([first, second], task="t")
    frame = pd.DataFrame({"prompt": ["q"], "answer": [" y"]})
    with pytest.raises(TaskDataError, match=r"^DataFrame: no 'task' column; add one, or load it"):
        load_tasks([first, frame], task="t")


def test_pandas_is_imported_only_for_dataframes(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", ROWS)
    code = (
        "import sys; from headwidget import load_tasks; "
        f"load_tasks({str(path)!r}); load_tasks({ROWS!r}); "
        "assert 'pandas' not in sys.modules, 'pandas was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- bad input: every error names the source and the 1-based line / row ------------------------


def test_missing_column_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("task,prompt\nt,France ->\n", encoding="utf-8")
    with pytest.raises(TaskDataError) as info:
        load_tasks(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 1:")
    assert "missing column(s) ['answer']" in message
    assert info.value.source == str(path) and info.value.row == "line 1"


def test_missing_field_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"prompt": "a", "answer": " b"}, {"prompt": "c", "answer": " d"}, {"prompt": "e"}],
    )
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 3: missing 'answer'"):
        load_tasks(path)


def test_missing_column_dataframe_and_list():
    pd = pytest.importorskip("pandas")
    with pytest.raises(TaskDataError, match=r"^DataFrame: missing column\(s\) \['prompt'\]"):
        load_tasks(pd.DataFrame({"answer": [" a"]}), task="t")
    with pytest.raises(TaskDataError, match=r"^list, row 2: missing 'prompt'"):
        load_tasks([{"prompt": "p", "answer": " a"}, {"answer": " b"}], task="t")


def test_empty_answer_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,answer\nFrance ->, Paris\nJapan ->,   \n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 3: empty 'answer'"):
        load_tasks(path)


def test_empty_answer_jsonl_dataframe_and_list(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = [
        {"task": "t", "prompt": "p", "answer": " a"},
        {"task": "t", "prompt": "q", "answer": ""},
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 2: empty 'answer'"):
        load_tasks(path)
    with pytest.raises(TaskDataError, match=r"^list, row 2: empty 'answer'"):
        load_tasks(rows)
    frame = pd.DataFrame([rows[0], {"task": "t", "prompt": "q", "answer": None}])
    with pytest.raises(TaskDataError, match=r"^DataFrame, row 2: empty 'answer'"):
        load_tasks(frame)
    frame.index = ["first", "second"]
    with pytest.raises(TaskDataError, match=r"^DataFrame, row 2 \(index 'second'\): empty"):
        load_tasks(frame)


@pytest.mark.parametrize("how", ["convert_dtypes", "read_csv"])
def test_dataframe_with_pandas_string_dtypes_and_missing_cells(tmp_path, how):
    pd = pytest.importorskip("pandas")
    rows = [
        {"task": "t", "prompt": "p", "answer": " a", "distractor": " b", "category": "K"},
        {"task": "t", "prompt": "q", "answer": " c", "distractor": None, "category": None},
    ]
    if how == "convert_dtypes":
        frame = pd.DataFrame(rows).convert_dtypes()
    else:
        path = tmp_path / "rows.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        frame = pd.read_csv(path, dtype="string")
    assert frame["distractor"].dtype == "string" and frame["distractor"].iloc[1] is pd.NA
    (task,) = load_tasks(frame)
    assert task.examples == [Example("p", " a", " b"), Example("q", " c")]
    assert task.category == "K"
    # A missing required answer is still the clear "empty" error naming the row.
    rows[1]["answer"] = None
    frame = pd.DataFrame(rows).convert_dtypes()
    assert frame["answer"].iloc[1] is pd.NA
    with pytest.raises(TaskDataError, match=r"^DataFrame, row 2: empty 'answer'"):
        load_tasks(frame)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_non_utf8_bytes(tmp_path, suffix):
    path = tmp_path / f"latin1{suffix}"
    if suffix == ".jsonl":
        good = b'{"prompt": "a", "answer": " b"}\n'
        bad = '{"prompt": "caf\u00e9 ->", "answer": " x"}\n'.encode("latin-1")
    else:
        good = b"prompt,answer\n"
        bad = "caf\u00e9 ->, x\n".encode("latin-1")
    path.write_bytes(good + bad)
    with pytest.raises(TaskDataError) as info:
        load_tasks(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 2: byte 0xe9")
    assert "not valid UTF-8" in message and "UTF-8 encoding" in message


def test_invalid_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "a", "answer": " b"}\n\n{"prompt": "c", "answer": " d",}\n', encoding="utf-8"
    )
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 3: invalid JSON"):
        load_tasks(path)
    path.write_text('["prompt", "answer"]\n', encoding="utf-8")
    with pytest.raises(TaskDataError, match=rf"^{_re(path)}, line 1: expected a JSON object"):
        load_tasks(path)


def test_same_task_name_with_two_categories(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(
        "task,category,prompt,answer\n"
        "capitals,Knowledge,France ->, Paris\n"
        "copy,Algorithmic,cat ->, cat\n"
        "capitals,Geography,Japan ->, Tokyo\n",
        encoding="utf-8",
    )
    with pytest.raises(TaskDataError) as info:
        load_tasks(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 4: task 'capitals' has category 'Geography'")
    assert "'Knowledge' at line 2" in message and "different names" in message


def test_inconsistent_category_in_list_and_against_argument():
    rows = [
        {"task": "t", "category": "A", "prompt": "p", "answer": " a"},
        {"task": "t", "category": "B", "prompt": "q", "answer": " b"},
    ]
    with pytest.raises(TaskDataError, match=r"^list, row 2: task 't' has category 'B'"):
        load_tasks(rows)
    with pytest.raises(TaskDataError, match=r"^list, row 1: .*category='C' was passed"):
        load_tasks(rows[:1], category="C")


def test_duplicate_task_names_across_sources(tmp_path):
    first = write_jsonl(tmp_path / "one.jsonl", [{"task": "t", "prompt": "p", "answer": " a"}])
    second = tmp_path / "two.csv"
    second.write_text("task,prompt,answer\nx,q, b\nt,r, c\n", encoding="utf-8")
    with pytest.raises(TaskDataError) as info:
        load_tasks([first, second])
    message = str(info.value)
    assert message.startswith(f"{second}: task 't' is also defined in {first}")
    # The same file twice collides too (its stem names the task).
    plain = write_jsonl(tmp_path / "same.jsonl", [{"prompt": "p", "answer": " a"}])
    with pytest.raises(TaskDataError, match="'same' is also defined"):
        load_tasks([plain, plain])


def test_other_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no task file"):
        load_tasks(tmp_path / "missing.jsonl")
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"")
    with pytest.raises(TaskDataError, match=r"unsupported file type '\.xlsx'"):
        load_tasks(odd)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match="no rows"):
        load_tasks(empty)
    wide = tmp_path / "wide.csv"
    wide.write_text("prompt,answer\na, b,c\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"line 2: 3 cells but the header has 2"):
        load_tasks(wide)
    with pytest.raises(TaskDataError, match=r"^list, row 1: 'answer' must be text, got float"):
        load_tasks([{"prompt": "p", "answer": 1.5}], task="t")
    with pytest.raises(TaskDataError, match=r"^list, row 2: expected a dict"):
        load_tasks([{"prompt": "p", "answer": " a"}, 42], task="t")
    with pytest.raises(TypeError, match="not a mix"):
        load_tasks([tmp_path / "a.jsonl", {"prompt": "p", "answer": " a"}])
    with pytest.raises(TypeError, match="takes a"):
        load_tasks(42)  # type: ignore[arg-type]


def _re(path: Path) -> str:
    import re

    return re.escape(str(path))


def test_source_column_loads_from_jsonl_and_csv(tmp_path):
    rows = [
        {"task": "caps", "prompt": "France ->", "answer": " Paris", "source": "France"},
        {"task": "caps", "prompt": "Japan ->", "answer": " Tokyo"},
    ]
    (from_jsonl,) = load_tasks(write_jsonl(tmp_path / "caps.jsonl", rows))
    csv_path = tmp_path / "caps.csv"
    csv_path.write_text(
        "task,prompt,answer,source\ncaps,France ->, Paris,France\ncaps,Japan ->, Tokyo,\n",
        encoding="utf-8",
    )
    (from_csv,) = load_tasks(csv_path)
    for task in (from_jsonl, from_csv):
        assert [ex.source for ex in task.examples] == ["France", None]
    assert repr(from_csv.examples[0]).endswith("distractor=None, source='France')")
    assert repr(from_csv.examples[1]).endswith("distractor=None)")  # printed as before


def test_example_rejects_a_bad_source():
    with pytest.raises(ValueError, match="blank source"):
        Example("France ->", " Paris", source="  ")
    with pytest.raises(TypeError, match="Example.source must be a string or None, got int"):
        Example("France ->", " Paris", source=3)  # type: ignore[arg-type]
    task = Task("caps", [{"prompt": "France ->", "answer": " Paris", "source": "France"}])
    assert task.examples[0].source == "France"


# -- hostile files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "where", "message"),
    [
        ("deep.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1", "nested too deeply"),
        (
            "digits.jsonl",
            b'{"prompt": "a", "answer": " b"}\n{"prompt": ' + b"7" * 5000 + b', "answer": " c"}\n',
            "line 2",
            "invalid JSON",
        ),
        ("bom.jsonl", b"\xef\xbb\xbf\xef\xbb\xbf[1]\n", "line 1", "expected a JSON object"),
    ],
)
def test_hostile_jsonl_names_file_and_line(tmp_path, name, content, where, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TaskDataError, match=message) as info:
        load_tasks(path)
    assert (info.value.source, info.value.row) == (str(path), where)


def test_a_directory_named_like_a_task_file(tmp_path):
    folder = tmp_path / "x.jsonl"
    folder.mkdir()
    with pytest.raises(TaskDataError, match="is a directory") as info:
        load_tasks(folder)
    assert info.value.source == str(folder)


def test_csv_starting_with_two_byte_order_marks_keeps_its_task_column(tmp_path):
    path = tmp_path / "two_boms.csv"
    text = "task,prompt,answer\ncapitals,France ->, Paris\ncopy,cat ->, cat\n"
    path.write_bytes(b"\xef\xbb\xbf" * 2 + text.encode())
    assert [task.name for task in load_tasks(path)] == ["capitals", "copy"]
