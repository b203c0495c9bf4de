"""Tasks: named sets of (prompt, answer) examples that head importance is measured on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = ["Example", "Task", "as_task_list"]


@dataclass(frozen=True, repr=False)
class Example:
    """One prompt and the answer the model should continue it with.

    ``answer`` is the exact continuation text (include a leading space where the tokenizer
    expects one, e.g. ``" Paris"``). ``distractor`` is an optional wrong answer, used by the
    ``"logit_diff"`` metric. ``source`` is the optional word the operation acts on (``"France"``
    for ``France -> Paris``), without a leading space; ``method="projection"`` needs it.

    >>> Example("The capital of France is", " Paris")
    Example(prompt='The capital of France is', answer=' Paris', distractor=None)
    >>> Example("France ->", " Paris", source="France").source
    'France'
    """

    prompt: str
    answer: str
    distractor: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("prompt", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Example.{name} must be a string, got {type(value).__name__}")
        if not self.answer:
            raise ValueError(
                f"Example with prompt {self.prompt!r} has an empty answer; every example needs"
                " the text the model should produce"
            )
        if self.distractor is not None and not isinstance(self.distractor, str):
            raise TypeError(
                f"Example.distractor must be a string or None, got {type(self.distractor).__name__}"
            )
        if self.source is not None and not isinstance(self.source, str):
            raise TypeError(
                f"Example.source must be a string or None, got {type(self.source).__name__}"
            )
        if self.source is not None and not self.source.strip():
            raise ValueError(
                f"Example with prompt {self.prompt!r} has a blank source; give the word the"
                " operation acts on, or None"
            )

    def __repr__(self) -> str:
        # ``source`` is shown only when given, so examples without one print as before.
        source = f", source={self.source!r}" if self.source is not None else ""
        return (
            f"Example(prompt={self.prompt!r}, answer={self.answer!r},"
            f" distractor={self.distractor!r}{source})"
        )


ExampleLike = Example | tuple[str, str] | tuple[str, str, str] | Mapping[str, Any]


def _as_example(item: ExampleLike, task_name: str, index: int) -> Example:
    where = f"task {task_name!r}, example {index}"
    if isinstance(item, Example):
        return item
    try:
        if isinstance(item, Mapping):
            missing = [key for key in ("prompt", "answer") if key not in item]
            if missing:
                raise ValueError(f"missing key(s) {missing}; give 'prompt' and 'answer'")
            return Example(
                item["prompt"], item["answer"], item.get("distractor"), item.get("source")
            )
        if isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3):
            return Example(*item)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None
    raise TypeError(
        f"{where}: expected a (prompt, answer) pair, a (prompt, answer, distractor) triple or a"
        f" dict with 'prompt' and 'answer', got {type(item).__name__}"
    )


@dataclass
class Task:
    """A named list of examples, optionally in a category (e.g. ``"Knowledge"``).

    Examples may be given as :class:`Example` objects, ``(prompt, answer)`` pairs,
    ``(prompt, answer, distractor)`` triples or dicts with ``prompt`` / ``answer`` (and optional
    ``distractor``) keys; they are stored as :class:`Example`.

    >>> task = Task("capitals", [("France ->", " Paris"),
    ...                          {"prompt": "Japan ->", "answer": " Tokyo"}], category="Knowledge")
    >>> len(task), task.examples[1].answer
    (2, ' Tokyo')
    """

    name: str
    examples: list[Example]
    category: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        examples: Iterable[ExampleLike],
        category: str | None = None,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Task name must be a non-empty string, got {name!r}")
        if category is not None and (not isinstance(category, str) or not category.strip()):
            raise ValueError(
                f"Task {name!r}: category must be a non-empty string or None, got {category!r}"
            )
        self.name = name
        self.examples = [_as_example(item, name, i) for i, item in enumerate(examples)]
        self.category = category
        self.description = description
        self.metadata = dict(metadata or {})

    def __len__(self) -> int:
        return len(self.examples)

    def __repr__(self) -> str:
        category = f", category={self.category!r}" if self.category else ""
        return f"Task({self.name!r}, {len(self.examples)} examples{category})"


def as_task_list(tasks: Any) -> list[Task]:
    """``tasks`` (a :class:`Task` or a list of them) as a checked list of uniquely named tasks.

    Raises a TypeError that says what was given and how to build tasks (a suite name points to
    ``load_suite``), or a ValueError for no tasks or repeated names.

    >>> as_task_list(Task("capitals", [("France ->", " Paris"), ("Japan ->", " Tokyo")]))
    [Task('capitals', 2 examples)]
    """
    if isinstance(tasks, Task):
        return [tasks]
    expected = "tasks must be a Task or a list of Task"
    if isinstance(tasks, str):
        raise TypeError(
            f"{expected}, got str {tasks!r}; for a built-in suite pass its tasks:"
            f" tasks=load_suite({tasks!r}) (from headwidget import load_suite), or"
            " tasks=load_tasks(path) for your own task file"
        )
    if isinstance(tasks, (bytes, Path)):
        raise TypeError(
            f"{expected}, got {type(tasks).__name__} {tasks!r}; for a task file pass"
            " tasks=load_tasks(path) (from headwidget import load_tasks)"
        )
    if not isinstance(tasks, Iterable):
        raise TypeError(f"{expected}, got {type(tasks).__name__}")
    task_list = list(tasks)
    if not task_list:
        raise ValueError("no tasks given; pass a Task or a non-empty list of Task")
    wrong = sorted({type(task).__name__ for task in task_list if not isinstance(task, Task)})
    if wrong:
        raise TypeError(
            f"{expected}, got a list holding {', '.join(wrong)}; build tasks with"
            " Task(name, examples), load_suite(name) or load_tasks(path)"
        )
    names = [task.name for task in task_list]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise ValueError(f"task names must be unique; repeated: {repeated}")
    return task_list
