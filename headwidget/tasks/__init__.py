"""The data scored on: :class:`Task` and :class:`Example`, task files (:func:`load_tasks`) and
the built-in suites (:func:`load_suite`). A leaf: nothing here imports torch, a model or a view.

>>> task = Task("capitals", [("The capital of France is", " Paris")], category="Knowledge")
>>> len(task), task.examples[0].answer
(1, ' Paris')
"""

from .files import TaskDataError, load_tasks
from .suites import available_suites, load_suite
from .task import Example, Task, as_task_list

__all__ = [
    "Example",
    "Task",
    "TaskDataError",
    "as_task_list",
    "available_suites",
    "load_suite",
    "load_tasks",
]
