"""Built-in task suites: few-shot prompts made from checked source/target data.

Two suites ship with the package (data in ``headwidget/data/suites/<suite>.jsonl``):

- ``"cognitive"``: the eight cognitive functions of the "Heads Importance" figure (Knowledge
  Recall, Retrieval, Logical Reasoning, Decision-making, Semantic Understanding, Syntactic
  Understanding, Inference, Math Calculation), as short-answer questions.
- ``"operations"``: the MAPS operations grouped into the categories Algorithmic, Knowledge,
  Linguistic and Translation (``"France" -> "Paris"`` and the like).

Every example's prompt is ``n_shots`` demonstrations of the same task (drawn with ``seed``, never
the example itself) followed by the query; the answer is the target with a leading space:

>>> task = load_suite("operations", n_shots=2, tasks=["country → capital"])[0]
>>> print(task.examples[0].prompt)
Germany -> Berlin
Zimbabwe -> Harare
France ->
>>> task.examples[0].answer, task.examples[0].distractor
(' Paris', ' Lyon')
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .task import Example, Task

__all__ = ["available_suites", "few_shot_task", "load_suite", "suite_table_markdown"]

# Templates end in "{target}": the query is the template up to "{target}" with trailing
# whitespace removed, and the answer is that whitespace followed by the target (" Paris").
PAIR_TEMPLATE = "{source} -> {target}"
QA_TEMPLATE = "Question: {source}\nAnswer: {target}"


@dataclass(frozen=True)
class _TaskSpec:
    name: str
    category: str
    description: str


@dataclass(frozen=True)
class _SuiteSpec:
    name: str
    description: str
    template: str
    separator: str  # between demonstrations
    source_key: str  # field of the JSONL record holding the source ("question" for Q&A)
    target_key: str
    tasks: tuple[_TaskSpec, ...]
    word_sources: bool  # the source is the word the operation acts on (Example.source)


_SUITES: dict[str, _SuiteSpec] = {
    spec.name: spec
    for spec in (
        _SuiteSpec(
            "cognitive",
            "Eight cognitive functions (Cognitive Mirrors, NeurIPS 2025) as short-answer"
            " questions with a distractor each",
            QA_TEMPLATE,
            "\n\n",
            "question",
            "answer",
            (
                _TaskSpec(
                    "Knowledge Recall",
                    "Knowledge",
                    "Answer a general-knowledge question from memory (symbols, dates, places).",
                ),
                _TaskSpec(
                    "Retrieval",
                    "Knowledge",
                    "Answer with a fact stated in the context about one of three people.",
                ),
                _TaskSpec(
                    "Logical Reasoning",
                    "Reasoning",
                    "Chain comparisons (A taller than B, B taller than C) and syllogisms.",
                ),
                _TaskSpec(
                    "Decision-making",
                    "Reasoning",
                    "Pick the better of two options for an everyday situation.",
                ),
                _TaskSpec(
                    "Semantic Understanding",
                    "Linguistic",
                    "Odd one out, word senses in context and what a sentence means.",
                ),
                _TaskSpec(
                    "Syntactic Understanding",
                    "Linguistic",
                    "Name the subject, object or verb of a sentence (active or passive);"
                    " is/are agreement.",
                ),
                _TaskSpec(
                    "Inference",
                    "Reasoning",
                    "Infer an unstated fact from clues (wet streets and umbrellas: rainy).",
                ),
                _TaskSpec(
                    "Math Calculation",
                    "Math",
                    "Add, subtract or multiply two small whole numbers.",
                ),
            ),
            False,
        ),
        _SuiteSpec(
            "operations",
            "Source -> target operations of the MAPS head categories (Algorithmic, Knowledge,"
            " Linguistic, Translation)",
            PAIR_TEMPLATE,
            "\n",
            "source",
            "target",
            (
                _TaskSpec("copying", "Algorithmic", "Repeat the word: apple -> apple."),
                _TaskSpec("first letter", "Algorithmic", "First letter of a word: cat -> c."),
                _TaskSpec("last letter", "Algorithmic", "Last letter of a word: cat -> t."),
                _TaskSpec("next year", "Algorithmic", "The following year: 1999 -> 2000."),
                _TaskSpec("name copying", "Algorithmic", "Repeat a first name: Alice -> Alice."),
                _TaskSpec("country → capital", "Knowledge", "Capital city: France -> Paris."),
                _TaskSpec(
                    "country → language",
                    "Knowledge",
                    "The official language of a country with one: Brazil -> Portuguese.",
                ),
                _TaskSpec(
                    "product → company",
                    "Knowledge",
                    "Company that makes a product: iPhone -> Apple.",
                ),
                _TaskSpec(
                    "object → superclass",
                    "Knowledge",
                    "The kind of thing an object is: apple -> fruit.",
                ),
                _TaskSpec("antonym", "Linguistic", "Opposite of an adjective: hot -> cold."),
                _TaskSpec("comparative", "Linguistic", "Comparative form: big -> bigger."),
                _TaskSpec("superlative", "Linguistic", "Superlative form: big -> biggest."),
                _TaskSpec("past tense", "Linguistic", "Simple past of a verb: go -> went."),
                _TaskSpec(
                    "pronoun",
                    "Linguistic",
                    "Subject pronoun for an entity: the queen -> she.",
                ),
                _TaskSpec("synonym", "Linguistic", "A word with the same meaning: big -> large."),
                _TaskSpec("English → French", "Translation", "Translate a word: dog -> chien."),
                _TaskSpec("English → Spanish", "Translation", "Translate a word: dog -> perro."),
                _TaskSpec("English → German", "Translation", "Translate a word: dog -> Hund."),
                # Added after the first 18 (kept last so their prompts stay as they were).
                _TaskSpec(
                    "occupation → workplace",
                    "Knowledge",
                    "Where someone of an occupation works: farmer -> farm.",
                ),
                _TaskSpec(
                    "homophone", "Linguistic", "A word that sounds the same: flower -> flour."
                ),
                _TaskSpec(
                    "compound",
                    "Linguistic",
                    "A compound word that starts with it: foot -> football.",
                ),
            ),
            True,
        ),
    )
}


def available_suites() -> list[str]:
    """Names of the built-in suites, for :func:`load_suite`.

    >>> available_suites()
    ['cognitive', 'operations']
    """
    return list(_SUITES)


def load_suite(
    name: str,
    *,
    n_shots: int = 3,
    seed: int = 0,
    max_examples: int | None = None,
    tasks: Sequence[str] | None = None,
    held_out: bool = False,
) -> list[Task]:
    """The tasks of a built-in suite, with few-shot prompts.

    ``n_shots`` demonstrations (0 allowed) precede each query; they are drawn from the other
    examples of the same task, deterministically for a given ``seed``. ``max_examples`` keeps a
    seeded subset of that many examples per task (in data order); ``held_out=True`` returns the
    rest instead (each task's examples that subset leaves out, the same prompts: a held-out set
    for checking maps computed on the subset). ``tasks`` keeps only the named tasks (in the
    suite's order). Every example has a ``distractor`` (a plausible wrong answer),
    so the ``"logit_diff"`` metric works on every built-in task. Examples of the operations
    suite also have their ``source`` word (``"France"``), which ``method="projection"`` needs.

    >>> [task.name for task in load_suite("cognitive", max_examples=5)][:3]
    ['Knowledge Recall', 'Retrieval', 'Logical Reasoning']
    """
    spec = _suite_spec(name)
    wanted = [task.name for task in spec.tasks]
    if tasks is not None:
        if isinstance(tasks, str):
            tasks = [tasks]
        unknown = [task for task in tasks if task not in wanted]
        if unknown or not tasks:
            raise ValueError(
                f"suite {name!r} has no task(s) {unknown or tasks}; its tasks are {wanted}"
            )
        wanted = [task for task in wanted if task in set(tasks)]
    records = _records(spec.name)
    result = []
    for task_spec in spec.tasks:
        if task_spec.name not in wanted:
            continue
        pairs = [
            (row[spec.source_key], row[spec.target_key], row.get("distractor"))
            for row in records[task_spec.name]
        ]
        task = few_shot_task(
            task_spec.name,
            pairs,
            n_shots=n_shots,
            seed=seed,
            max_examples=max_examples,
            held_out=held_out,
            category=task_spec.category,
            description=task_spec.description,
            template=spec.template,
            separator=spec.separator,
            keep_source=spec.word_sources,
        )
        task.metadata["suite"] = spec.name
        result.append(task)
    return result


def few_shot_task(
    name: str,
    pairs: Sequence[tuple[str, str] | tuple[str, str, str | None]],
    *,
    n_shots: int = 3,
    seed: int = 0,
    max_examples: int | None = None,
    held_out: bool = False,
    category: str | None = None,
    description: str = "",
    template: str = PAIR_TEMPLATE,
    separator: str = "\n",
    keep_source: bool = True,
) -> Task:
    """A :class:`Task` of few-shot prompts from ``(source, target[, distractor])`` pairs.

    ``template`` has ``{source}`` and ends with ``{target}``; the query is the template up to
    ``{target}`` (trailing whitespace removed) and the answer is that whitespace plus the target.
    Demonstrations for an example never include a pair with the same source. With
    ``keep_source`` each example records its source word in ``Example.source`` (what
    ``method="projection"`` maps to the target); turn it off when sources are not words.
    ``max_examples`` keeps a seeded subset; ``held_out=True`` the examples it leaves out.

    >>> task = few_shot_task("capitals", [("France", "Paris"), ("Japan", "Tokyo"),
    ...                                   ("Italy", "Rome", "Milan")], n_shots=2)
    >>> print(task.examples[2].prompt)
    Japan -> Tokyo
    France -> Paris
    Italy ->
    >>> task.examples[2].answer, task.examples[2].distractor, task.examples[2].source
    (' Rome', ' Milan', 'Italy')
    """
    if isinstance(n_shots, bool) or not isinstance(n_shots, int) or n_shots < 0:
        raise ValueError(f"n_shots must be a whole number >= 0, got {n_shots!r}")
    if max_examples is not None and (
        isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1
    ):
        raise ValueError(
            f"max_examples must be a positive whole number or None, got {max_examples!r}"
        )
    _check_template(template)
    head = template[: -len("{target}")]
    query_part = head.rstrip()
    gap = head[len(query_part) :]
    items = [_pair(name, i, pair) for i, pair in enumerate(pairs)]
    if not items:
        raise ValueError(f"task {name!r}: no pairs given")
    others_needed = n_shots + 1
    sources = [source for source, _, _ in items]
    if len(set(sources)) < others_needed:
        raise ValueError(
            f"task {name!r} has {len(set(sources))} distinct sources, too few for"
            f" n_shots={n_shots} demonstrations plus the query; lower n_shots"
        )
    chosen: Sequence[int] = range(len(items))
    if max_examples is not None and max_examples < len(items):
        # String seeds are hashed with SHA-512 by random.Random: the same on every run and
        # platform, unlike hash().
        subset_rng = random.Random(f"{seed}|{name}|subset")
        chosen = sorted(subset_rng.sample(range(len(items)), max_examples))
    if held_out:
        kept = set(chosen)
        chosen = [i for i in range(len(items)) if i not in kept]
        if not chosen:
            raise ValueError(
                f"task {name!r}: held_out=True but max_examples={max_examples} keeps all"
                f" {len(items)} examples; lower max_examples"
            )
    examples = []
    for index in chosen:
        source, target, distractor = items[index]
        rng = random.Random(f"{seed}|{name}|{index}")
        candidates = [j for j, other in enumerate(sources) if other != source]
        shots = rng.sample(candidates, n_shots)
        lines = [template.format(source=items[j][0], target=items[j][1]) for j in shots]
        lines.append(query_part.format(source=source))
        examples.append(
            Example(
                separator.join(lines),
                gap + target,
                gap + distractor if distractor else None,
                source if keep_source else None,
            )
        )
    return Task(
        name,
        examples,
        category=category,
        description=description,
        metadata={"n_shots": n_shots, "seed": seed, "template": template, "separator": separator},
    )


def _check_template(template: str) -> None:
    """``template`` uses exactly the fields ``{source}`` and ``{target}``, the latter last."""
    problem = None
    try:
        fields = [
            (field, spec, conversion)
            for _, field, spec, conversion in string.Formatter().parse(template)
            if field is not None
        ]
    except (ValueError, TypeError) as err:
        problem = str(err)
    else:
        if [field for field, _, _ in fields] != ["source", "target"] or any(
            spec or conversion for _, spec, conversion in fields
        ):
            problem = f"it has the fields {[field for field, _, _ in fields]}"
    if problem is not None or not template.endswith("{target}"):
        raise ValueError(
            f"template must contain '{{source}}' and end with '{{target}}' (no other fields;"
            f" write a literal brace as '{{{{' or '}}}}'), got {template!r}"
            + (f": {problem}" if problem else "")
        )


def _pair(name: str, index: int, pair: Any) -> tuple[str, str, str | None]:
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) not in (2, 3):
        raise ValueError(
            f"task {name!r}, pair {index}: expected (source, target) or (source, target,"
            f" distractor), got {pair!r}"
        )
    distractor = pair[2] if len(pair) == 3 else None
    if distractor is not None and not isinstance(distractor, str):
        raise ValueError(
            f"task {name!r}, pair {index}: the distractor must be a string or None, got"
            f" {distractor!r}"
        )
    return str(pair[0]), str(pair[1]), distractor


def suite_table_markdown(names: Sequence[str] | None = None) -> str:
    """A Markdown table of the built-in suites: task, category, examples and one query.

    The query is shown without its demonstrations (``n_shots=0``), with ``⏎`` for a line break.

    >>> print(suite_table_markdown(["operations"]).splitlines()[2])
    | operations | copying | Algorithmic | 49 | `apple ->` | ` apple` |
    """
    lines = [
        "| Suite | Task | Category | Examples | Query (demonstrations left out) | Answer |",
        "|---|---|---|---:|---|---|",
    ]
    for suite in names or available_suites():
        for task in load_suite(suite, n_shots=0):
            example = task.examples[0]
            query = example.prompt.replace("\n", " ⏎ ")
            if len(query) > 70:
                query = query[:67].rstrip() + "…"
            cells = [suite, task.name, task.category or "", str(len(task)), f"`{query}`"]
            cells.append(f"`{example.answer}`")
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _suite_spec(name: str) -> _SuiteSpec:
    try:
        return _SUITES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown suite {name!r}; the built-in suites are {available_suites()}. For your own"
            " data use headwidget.load_tasks(path)"
        ) from None


@cache
def _records(suite: str) -> dict[str, list[dict[str, str]]]:
    """The suite's JSONL records grouped by task (read once per process)."""
    path = resources.files("headwidget") / "data" / "suites" / f"{suite}.jsonl"
    grouped: dict[str, list[dict[str, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            grouped.setdefault(row["task"], []).append(row)
    return grouped
