"""Tasks: named sets of (prompt, answer) examples that head importance is measured on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Example", "Task"]


@dataclass(frozen=True)
class Example:
    """One prompt and the answer the model should continue it with.

    ``answer`` is the exact continuation text (include a leading space where the tokenizer
    expects one, e.g. ``" Paris"``). ``distractor`` is an optional wrong answer, used by the
    ``"logit_diff"`` metric.

    >>> Example("The capital of France is", " Paris")
    Example(prompt='The capital of France is', answer=' Paris', distractor=None)
    """

    prompt: str
    answer: str
    distractor: str | None = None

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
            return Example(item["prompt"], item["answer"], item.get("distractor"))
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

    >>> task = Task("capitals", [("France ->", " Paris"), {"prompt": "Japan ->", "answer": " Tokyo"}],
    ...             category="Knowledge")
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
