"""load_suite / few_shot_task: task lists, few-shot prompts, seeds, subsets, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwidget import load_suite as lazily_exported_load_suite
from headwidget.tasks import Task
from headwidget.tasks.suites import (
    available_suites,
    few_shot_task,
    load_suite,
    suite_table_markdown,
)

COGNITIVE = [
    "Knowledge Recall",
    "Retrieval",
    "Logical Reasoning",
    "Decision-making",
    "Semantic Understanding",
    "Syntactic Understanding",
    "Inference",
    "Math Calculation",
]
OPERATIONS = {
    "Algorithmic": ["copying", "first letter", "last letter", "next year", "name copying"],
    "Knowledge": [
        "country → capital",
        "country → language",
        "product → company",
        "object → superclass",
        "occupation → workplace",
    ],
    "Linguistic": [
        "antonym",
        "comparative",
        "superlative",
        "past tense",
        "pronoun",
        "synonym",
        "homophone",
        "compound",
    ],
    "Translation": ["English → French", "English → Spanish", "English → German"],
}
# The MAPS operations added after the first 18 come last, so the first 18 keep their prompts.
ADDED_OPERATIONS = ["occupation → workplace", "homophone", "compound"]


def test_available_suites_and_lazy_export():
    assert available_suites() == ["cognitive", "operations"]
    assert lazily_exported_load_suite is load_suite


def test_unknown_suite_lists_the_available_ones():
    with pytest.raises(
        ValueError, match=r"unknown suite 'cognitve'.*\['cognitive', 'operations'\]"
    ):
        load_suite("cognitve")


def test_cognitive_tasks_in_figure_order_with_categories():
    tasks = load_suite("cognitive")
    assert [task.name for task in tasks] == COGNITIVE
    assert {task.name: task.category for task in tasks} == {
        "Knowledge Recall": "Knowledge",
        "Retrieval": "Knowledge",
        "Logical Reasoning": "Reasoning",
        "Decision-making": "Reasoning",
        "Semantic Understanding": "Linguistic",
        "Syntactic Understanding": "Linguistic",
        "Inference": "Reasoning",
        "Math Calculation": "Math",
    }


def test_operations_tasks_and_categories():
    tasks = load_suite("operations")
    first = [n for names in OPERATIONS.values() for n in names if n not in ADDED_OPERATIONS]
    assert [task.name for task in tasks] == first + ADDED_OPERATIONS
    assert len(tasks) == 21  # MAPS's 20 operations and English -> German
    for task in tasks:
        assert task.name in OPERATIONS[task.category]


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_every_built_in_task_is_described_and_fully_specified(suite):
    for task in load_suite(suite):
        assert isinstance(task, Task)
        assert 10 < len(task.description) <= 120, task.name
        assert task.metadata["suite"] == suite
        for example in task.examples:
            assert example.answer.startswith(" ") and example.answer.strip() == example.answer[1:]
            assert example.distractor is not None and example.distractor.startswith(" ")
            assert example.distractor != example.answer


def test_prompt_format_operations():
    (task,) = load_suite("operations", n_shots=3, tasks=["country → capital"])
    example = task.examples[0]
    lines = example.prompt.split("\n")
    assert len(lines) == 4 and lines[-1] == "France ->" and example.answer == " Paris"
    assert all(line.count(" -> ") == 1 for line in lines[:-1])
    (zero,) = load_suite("operations", n_shots=0, tasks=["country → capital"])
    assert zero.examples[0].prompt == "France ->"


def test_prompt_format_cognitive():
    (task,) = load_suite("cognitive", n_shots=2, tasks=["Math Calculation"])
    example = task.examples[0]
    blocks = example.prompt.split("\n\n")
    assert len(blocks) == 3
    for block in blocks[:-1]:
        question, answer = block.split("\n")
        assert question.startswith("Question: ") and answer.startswith("Answer: ")
    assert blocks[-1].startswith("Question: What is ") and blocks[-1].endswith("\nAnswer:")
    a, word, b = blocks[-1][len("Question: What is ") : -len("?\nAnswer:")].split()
    expected = {"plus": int(a) + int(b), "minus": int(a) - int(b), "times": int(a) * int(b)}
    assert example.answer == f" {expected[word]}"


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
def test_demonstrations_never_include_the_query(suite):
    separator = "\n\n" if suite == "cognitive" else "\n"
    for task in load_suite(suite, n_shots=5):
        for example in task.examples:
            *shots, query = example.prompt.split(separator)
            assert len(shots) == 5 and len(set(shots)) == 5
            # The query's own pair is not a demonstration, nor is any pair with its source.
            assert query + example.answer not in shots
            assert not any(shot.startswith(query + " ") for shot in shots)


def test_same_seed_same_prompts_other_seed_other_prompts():
    first = load_suite("operations", seed=3)
    again = load_suite("operations", seed=3)
    other = load_suite("operations", seed=4)
    assert [t.examples for t in first] == [t.examples for t in again]
    for a, b in zip(first, other, strict=True):
        same = sum(x.prompt == y.prompt for x, y in zip(a.examples, b.examples, strict=True))
        assert same < len(a) // 4, a.name
        # Only the demonstrations change, not the queries or answers.
        assert [x.answer for x in a.examples] == [y.answer for y in b.examples]


def test_max_examples_is_a_deterministic_seeded_subset():
    full = {t.name: t for t in load_suite("cognitive", n_shots=0)}
    small = load_suite("cognitive", n_shots=0, max_examples=7, seed=1)
    assert all(len(task) == 7 for task in small)
    assert [t.examples for t in small] == [
        t.examples for t in load_suite("cognitive", n_shots=0, max_examples=7, seed=1)
    ]
    other = load_suite("cognitive", n_shots=0, max_examples=7, seed=2)
    assert [t.examples for t in small] != [t.examples for t in other]
    for task in small:
        queries = [e.prompt for e in full[task.name].examples]
        positions = [queries.index(e.prompt) for e in task.examples]
        assert positions == sorted(positions)  # kept in data order
    big = load_suite("operations", max_examples=10_000)
    assert [len(t) for t in big] == [len(t) for t in load_suite("operations")]


def test_tasks_argument():
    tasks = load_suite("operations", tasks=["English → German", "copying"])
    assert [task.name for task in tasks] == ["copying", "English → German"]  # suite order
    assert [t.name for t in load_suite("cognitive", tasks="Inference")] == ["Inference"]
    with pytest.raises(ValueError, match=r"no task\(s\) \['capitals'\].*'country → capital'"):
        load_suite("operations", tasks=["capitals"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_shots": -1}, "n_shots"),
        ({"n_shots": 1.5}, "n_shots"),
        ({"max_examples": 0}, "max_examples"),
        ({"n_shots": 500}, "too few"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_suite("operations", **kwargs)


def test_few_shot_task_with_a_custom_template():
    pairs = [("2 + 2", "4", "5"), ("3 + 3", "6"), ("1 + 4", "5", "6")]
    task = few_shot_task(
        "sums", pairs, n_shots=1, template="Q: {source} = {target}", separator=" | ", seed=9
    )
    assert task.category is None and task.metadata["n_shots"] == 1
    for example, (source, target, *_) in zip(task.examples, pairs, strict=True):
        shot, query = example.prompt.split(" | ")
        assert query == f"Q: {source} =" and example.answer == f" {target}"
        assert shot != f"Q: {source} = {target}"
    assert task.examples[0].distractor == " 5" and task.examples[1].distractor is None
    with pytest.raises(ValueError, match="end with"):
        few_shot_task("x", pairs, template="{target} <- {source}")


def test_suite_table_markdown_has_a_row_per_task_with_counts():
    table = suite_table_markdown()
    rows = table.splitlines()[2:]
    tasks = load_suite("cognitive") + load_suite("operations")
    assert len(rows) == len(tasks)
    for row, task in zip(rows, tasks, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[1:4] == [task.name, task.category, str(len(task))]


def test_operations_examples_carry_their_source_word_and_cognitive_ones_none():
    for task in load_suite("operations", n_shots=1):
        for example in task.examples:
            assert example.prompt.split("\n")[-1] == f"{example.source} ->", task.name
    assert all(ex.source is None for t in load_suite("cognitive") for ex in t.examples)
    task = few_shot_task("caps", [("France", "Paris"), ("Japan", "Tokyo")], n_shots=1)
    assert [ex.source for ex in task.examples] == ["France", "Japan"]
    plain = few_shot_task(
        "caps", [("France", "Paris"), ("Japan", "Tokyo")], n_shots=1, keep_source=False
    )
    assert plain.examples[0].source is None


def test_old_operations_tasks_keep_their_shipped_demo_prompts():
    # The shipped demo maps were scored on these prompts (load_suite("operations", n_shots=3,
    # seed=0, max_examples=8) with the first 18 tasks, frozen in the fixture before any task was
    # added): tasks added later must not change them.
    path = Path(__file__).parent / "fixtures" / "operations_demo_prompts.json"
    frozen = json.loads(path.read_text(encoding="utf-8"))
    tasks = {task.name: task for task in load_suite("operations", **frozen["config"])}
    assert list(tasks)[: len(frozen["tasks"])] == list(frozen["tasks"])  # new tasks at the end
    for name, examples in frozen["tasks"].items():
        got = [[ex.prompt, ex.answer, ex.distractor] for ex in tasks[name].examples]
        assert got == examples, name


@pytest.mark.parametrize(
    ("pairs", "options", "message"),
    [
        ([("a",)], {}, r"pair 0: expected \(source, target\)"),
        (["ab"], {}, r"pair 0: expected \(source, target\)"),
        ([("a", "b", 5)], {}, "pair 0: the distractor must be a string or None"),
        ([("a", "b")], {"template": "{source} {x} -> {target}"}, "fields"),
        ([("a", "b")], {"template": "{0} {source} -> {target}"}, "fields"),
        ([("a", "b")], {"template": "{source!r} -> {target}"}, "no other fields"),
        ([("a", "b")], {"template": "{source} } -> {target}"}, "Single '}'"),
        ([("a", "b")], {"n_shots": True}, "n_shots must be a whole number"),
        ([("a", "b")], {"max_examples": True}, "max_examples must be"),
    ],
)
def test_few_shot_task_rejects_bad_pairs_and_templates(pairs, options, message):
    with pytest.raises(ValueError, match=message):
        few_shot_task("t", pairs, **{"n_shots": 0, **options})


def test_load_suite_with_an_empty_task_selection_says_so():
    with pytest.raises(ValueError, match="has no task"):
        load_suite("cognitive", tasks=[])


def test_held_out_examples_are_the_rest_of_each_task() -> None:
    """``held_out=True`` gives exactly the examples ``max_examples`` leaves out, with the same
    prompts a full load builds (a held-out check of maps computed on the subset)."""
    kept = load_suite("operations", max_examples=10, tasks=["copying", "antonym"])
    rest = load_suite("operations", max_examples=10, tasks=["copying", "antonym"], held_out=True)
    full = load_suite("operations", tasks=["copying", "antonym"])
    for a, b, whole in zip(kept, rest, full, strict=True):
        ours, theirs = {e.prompt for e in a.examples}, {e.prompt for e in b.examples}
        assert len(a) == 10 and len(b) == len(whole) - 10 and not ours & theirs
        assert ours | theirs == {e.prompt for e in whole.examples}
    with pytest.raises(ValueError, match="held_out=True but max_examples=None keeps all"):
        load_suite("operations", tasks=["copying"], held_out=True)
