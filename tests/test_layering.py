"""The package's layers, measured from its source: model plumbing -> methods -> scores -> views.

Every import counts, at module level or inside a function, type-checking ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "headwidget"

# layer of each top-level part of the package; an import may only go to the same or a lower layer
LAYERS = {
    "version": 0, "durations": 0,
    "tasks": 1, "scores": 1,
    "modeling": 2,
    "methods": 3,
    "scoring": 4,
    "sweep": 5, "views": 5, "demo": 5,
    "cli": 6, "__main__": 6, "__init__": 6,
    "results": 6, "validation": 6,  # old module paths, kept as re-exports
}  # fmt: skip
HOOK_CALLS = {
    "register_forward_pre_hook", "register_forward_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_hook",
}  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == "headwidget":
                base = []
            else:
                continue
            target = base + (node.module.split(".") if node.module else [])
            if target[:1] == ["headwidget"]:
                target = target[1:]
            for alias in node.names:  # "from . import x" may import the submodule x
                sub = ".".join([*target, alias.name])
                out.add(sub if sub in known else ".".join(target) or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("headwidget."):
                    out.add(alias.name.removeprefix("headwidget."))
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_imports_only_go_down_the_layers() -> None:
    for name, targets in graph().items():
        for target in targets:
            here, there = LAYERS[name.split(".")[0]], LAYERS[target.split(".")[0]]
            assert there <= here, f"{name} (layer {here}) imports {target} (layer {there})"


def test_torch_hooks_are_registered_only_in_modeling() -> None:
    for name, path in modules().items():
        if name.startswith("modeling"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in HOOK_CALLS:
                pytest.fail(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.attr}")


def test_modules_and_functions_stay_small() -> None:
    for name, path in modules().items():
        source = path.read_text()
        lines = source.count("\n")
        assert lines <= 550, f"{name}: {lines} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                # the command's argument-parser table is long by nature
                if (name, node.name) != ("cli.parser", "build_parser"):
                    assert length <= 120, f"{name}.{node.name}: {length} lines"


def test_private_names_stay_inside_their_module() -> None:
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                node.level or "headwidget" in (node.module or "")
            ):
                private = [
                    a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"
                ]
                assert not private, f"{name} imports private {private} from {node.module}"
