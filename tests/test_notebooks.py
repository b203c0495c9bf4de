"""The notebooks in notebooks/, executed end to end with nbclient in a real kernel.

:func:`run_notebook` runs a notebook in a fresh ``python3`` kernel of the interpreter running the
tests, in a working directory of the caller's choosing (a tmp dir: whatever the notebook writes
stays out of the repository), optionally replacing the source of tagged cells (e.g. the
"parameters" cell, to point a notebook at tiny local models) and appending check cells that run in
the notebook's own kernel.
"""

from __future__ import annotations

import ast
import base64
import glob
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from tiny_models import suite_tokenizer, tiny_model
from traitlets import default

from headwidget import HeadScores, load_suite

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
GRID_ID = "headwidget.views.widget.HeadImportanceGrid"  # the anywidget id of its widget model


class _ThisInterpreterKernelManager(AsyncKernelManager):
    """Starts ``python3`` as ipykernel's own kernelspec, i.e. ``sys.executable``, ignoring any
    installed ``python3`` kernelspec (a user-level one may point at another environment)."""

    @default("kernel_spec_manager")
    def _default_kernel_spec_manager(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


def run_notebook(
    notebook: str | Path,
    cwd: str | Path,
    *,
    replace: Mapping[str, str] | None = None,
    append: Sequence[str] = (),
    timeout: int = 300,
    env: Mapping[str, str] | None = None,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` (a path, or a bare file name in notebooks/) and return it with its
    outputs and, in ``nb.metadata.widgets``, the final state of its widgets.

    The kernel runs this interpreter (``sys.executable``) with working directory ``cwd``.
    ``replace`` maps a cell tag to new source for the one code cell with that tag (an error if
    there is not exactly one); ``append`` adds code cells at the end. ``timeout`` is per cell, in
    seconds. The kernel's environment is this process's plus ``env``, with ``OMP_NUM_THREADS=1``
    unless given: the test models are tiny, and extra threads only contend on a shared machine
    (as in conftest.py). A failing cell raises ``nbclient.exceptions.CellExecutionError`` with
    its traceback. The notebook file itself is not modified.
    """
    path = Path(notebook)
    if len(path.parts) == 1:
        path = NOTEBOOKS / path
    nb = nbformat.read(path, as_version=4)
    for tag, source in (replace or {}).items():
        tagged = [
            cell
            for cell in nb.cells
            if cell.cell_type == "code" and tag in cell.metadata.get("tags", [])
        ]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} code cells tagged {tag!r}, not 1"
        tagged[0].source = source
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in append)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=_ThisInterpreterKernelManager,
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=True,
    )
    client.execute(env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    return nb


def tagged_source(notebook: str | Path, tag: str) -> str:
    """The source of the one code cell of ``notebook`` (in notebooks/) tagged ``tag``."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    (cell,) = [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]
    return cell.source


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of ``source``, in order."""
    return [
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


def stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stdout"
    )


def widget_views(cell: nbformat.NotebookNode) -> list[dict]:
    """The widget-view outputs of a cell (``{"model_id": ..., ...}``)."""
    return [
        output.data[WIDGET_MIME]
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result") and WIDGET_MIME in output.data
    ]


def widget_states(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """The last state of every widget of an executed notebook, by model id, as nbclient saved
    it in the notebook's metadata; binary buffers decoded to ``bytes``."""
    saved = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    states = {}
    for model_id, model in saved.get("state", {}).items():
        state = dict(model["state"])
        for buffer in model.get("buffers", []):
            assert buffer["encoding"] == "base64" and len(buffer["path"]) == 1, buffer
            state[buffer["path"][0]] = base64.b64decode(buffer["data"])
        states[model_id] = state
    return states


def grid_views(nb: nbformat.NotebookNode) -> list[tuple[int, dict]]:
    """``(code cell index, widget state)`` of every HeadImportanceGrid view in the outputs."""
    states = widget_states(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    return [
        (index, states[view["model_id"]])
        for index, cell in enumerate(code)
        for view in widget_views(cell)
        if states.get(view["model_id"], {}).get("_anywidget_id") == GRID_ID
    ]


def grid_values(state: dict) -> np.ndarray:
    """A grid's ``values`` trait as float32 ``[tasks, layers, heads]``."""
    return np.frombuffer(state["values"], dtype="<f4").reshape(state["shape"])


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"{output.ename}: {output.evalue}"
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


# -- stored notebooks ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} is stored with outputs"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"


# -- colab_demo.ipynb ------------------------------------------------------------------------------

COLAB = "colab_demo.ipynb"
COLAB_PARAMETERS = [
    "GPT2_MODEL",
    "GQA_MODEL",
    "EXAMPLES_PER_TASK",
    "DTYPE",
    "TOP_K",
    "OUTPUT_DIR",
]


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory):
    """Local stand-ins for "gpt2" and "Qwen/Qwen2.5-0.5B": random tiny models of the same
    architectures (the Qwen2 one with grouped-query attention), saved with ``save_pretrained``
    together with a word-level tokenizer covering both suites' words."""
    root = tmp_path_factory.mktemp("hub")
    tokenizer = suite_tokenizer(load_suite("operations") + load_suite("cognitive"))
    models = {
        "tiny-gpt2": tiny_model("gpt2", vocab_size=len(tokenizer), n_positions=512),
        "tiny-qwen2": tiny_model(
            "qwen2", vocab_size=len(tokenizer), n_layers=3, max_position_embeddings=512
        ),
    }
    paths = {}
    for name, model in models.items():
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = root / name
    assert (
        models["tiny-qwen2"].config.num_key_value_heads
        < models["tiny-qwen2"].config.num_attention_heads
    )
    return paths


def test_colab_parameters_cell_is_as_documented():
    source = tagged_source(COLAB, "parameters")
    assert assigned_names(source) == COLAB_PARAMETERS
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["GPT2_MODEL"] == "gpt2"
    assert namespace["GQA_MODEL"] == "Qwen/Qwen2.5-0.5B"
    assert namespace["DTYPE"] == "auto"


def test_colab_notebook_runs_on_local_models(tiny_hub, tmp_path):
    top_k = 3
    parameters = "\n".join(
        [
            f"GPT2_MODEL = {str(tiny_hub['tiny-gpt2'])!r}",
            f"GQA_MODEL = {str(tiny_hub['tiny-qwen2'])!r}",
            "EXAMPLES_PER_TASK = 3",
            'DTYPE = "auto"',
            f"TOP_K = {top_k}",
            'OUTPUT_DIR = "scores"',
        ]
    )
    assert assigned_names(parameters) == COLAB_PARAMETERS
    check_freed = (
        "import gc\n"
        "from transformers import PreTrainedModel\n"
        "gc.collect()\n"
        "print('models alive:', [type(o).__name__ for o in gc.get_objects()"
        " if issubclass(type(o), PreTrainedModel)])"
    )
    nb = run_notebook(COLAB, tmp_path, replace={"parameters": parameters}, append=[check_freed])
    assert errors(nb) == []
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    text = "".join(stdout(cell) for cell in code)

    # outside Colab the install cell installs nothing
    assert "not in Colab: nothing to install" in stdout(code[0])
    assert "device: cpu, dtype: float32" in text

    # two grids per model, each shown by its own cell, finished and holding the final scores
    views = grid_views(nb)
    assert len(views) == 4, views
    assert len({index for index, _ in views}) == 4
    suites = {name: load_suite(name, max_examples=3) for name in ("cognitive", "operations")}
    shapes = {"tiny-gpt2": (2, 4), "tiny-qwen2": (3, 4)}
    grids = iter(views)
    for model, (n_layers, n_heads) in shapes.items():
        for suite, tasks in suites.items():
            names = [task.name for task in tasks]
            path = tmp_path / "scores" / f"{model}-{suite}.npz"
            assert f"{model} · {suite}: scored in" in text
            assert f"saved to {Path('scores', path.name)}" in text
            scores = HeadScores.load(path)
            assert scores.shape == (len(tasks), n_layers, n_heads)
            assert scores.tasks == names
            assert scores.meta["model"] == str(tiny_hub[model])
            assert scores.meta["examples"] == dict.fromkeys(names, 3)
            assert np.isfinite(scores.values).all()

            _, grid = next(grids)
            assert grid["title"] == f"{tiny_hub[model]} · {suite} suite"
            assert [task["name"] for task in grid["tasks"]] == names
            assert grid["progress"].get("running") is False  # scoring finished: "done in …"
            assert grid["progress"]["text"].startswith("done in")
            assert grid["orientation"] == "layer_y"
            assert grid["tab"] == ("categories" if suite == "operations" else "all")
            np.testing.assert_array_equal(grid_values(grid), scores.values)

            # the printed top heads are the saved ones
            block = text.split(f"{model} · {suite}: scored in", 1)[1]
            for name in names:
                top = scores.top_heads(name, top_k)
                heads = "  ".join(f"L{layer}H{head} {value:+.3f}" for layer, head, value in top)
                assert re.search(rf"^  {re.escape(name)} +{re.escape(heads)}$", block, re.M), name
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == sorted(
        f"{model}-{suite}.npz" for model in shapes for suite in suites
    )
    # the last notebook cell lists what it saved; freeing left no model behind
    assert text.count("tasks × ") == 4
    assert stdout(code[-1]).strip() == "models alive: []"


def _colab_cells():
    nb = nbformat.read(NOTEBOOKS / COLAB, as_version=4)
    install = [c.source for c in nb.cells if "HEADWIDGET_GIT_URL = " in c.source]
    enable = [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "enable_custom_widget_manager()" in c.source
    ]
    assert len(install) == 1 and len(enable) == 1
    return install[0], enable[0]


def test_colab_install_cells(monkeypatch, tmp_path, capsys):
    """The install and widget-manager cells: nothing outside Colab; in Colab (a stand-in
    google.colab module), pip installs the newest uploaded wheel, else the git URL, else the
    cell says what to do."""
    install, enable = _colab_cells()
    pip_calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kwargs: pip_calls.append(cmd))
    real_glob = glob.glob
    monkeypatch.setattr(glob, "glob", lambda p: real_glob(p.replace("/content", str(tmp_path))))

    def run_cells(install_source: str) -> dict:
        namespace: dict = {}
        exec(install_source, namespace)
        exec(enable, namespace)
        return namespace

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert run_cells(install)["IN_COLAB"] is False
    assert pip_calls == []

    enabled = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(1))
    monkeypatch.setitem(sys.modules, "google.colab", colab)

    with pytest.raises(RuntimeError, match="HEADWIDGET_GIT_URL"):
        run_cells(install)
    assert pip_calls == []

    url = "https://example.invalid/someone/headwidget.git@main"
    assert install.count('HEADWIDGET_GIT_URL = ""') == 1
    assert run_cells(install.replace('HEADWIDGET_GIT_URL = ""', f"HEADWIDGET_GIT_URL = {url!r}"))[
        "IN_COLAB"
    ]
    assert pip_calls[-1][-1] == f"git+{url}"
    assert pip_calls[-1][:4] == [sys.executable, "-m", "pip", "install"]
    assert enabled == [1]

    # a wheel in /content wins over the URL; of several, the one uploaded last
    uploaded_last = tmp_path / "headwidget-0.1.0-py3-none-any.whl"
    uploaded_first = tmp_path / "headwidget-0.2.0-py3-none-any.whl"
    uploaded_last.write_bytes(b"")
    uploaded_first.write_bytes(b"")
    os.utime(uploaded_first, (1_000_000_000, 1_000_000_000))
    run_cells(install.replace('HEADWIDGET_GIT_URL = ""', f"HEADWIDGET_GIT_URL = {url!r}"))
    assert pip_calls[-1][-1] == str(uploaded_last)
    assert enabled == [1, 1]

    # an ipywidgets imported before pip upgraded it: the cell says to restart
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__="7.7.1"))
    run_cells(install)
    assert "ipywidgets 7.7.1 was imported before the upgrade" in capsys.readouterr().out


# -- custom_tasks.ipynb ----------------------------------------------------------------------------

CUSTOM = "custom_tasks.ipynb"
# (task, category, examples): the notebook's own tasks, then the built-in ones it adds
CUSTOM_TASKS = [
    ("capital → country", "Knowledge", 12),
    ("language → country", "Knowledge", 12),
    ("antonym (one line)", "Linguistic", 12),
    ("French → English", "Translation", 12),
    ("country → capital", "Knowledge", 12),
    ("country → language", "Knowledge", 12),
    ("antonym", "Linguistic", 12),
    ("English → French", "Translation", 12),
]
CUSTOM_SCORED = 3  # examples per task the notebook scores on a CPU


def test_custom_tasks_notebook(tmp_path):
    from headwidget.demo import load_demo_model

    model, tokenizer = load_demo_model()
    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads

    nb = run_notebook(CUSTOM, tmp_path, timeout=900)
    assert errors(nb) == []
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    text = "".join(stdout(cell) for cell in code)
    results = "".join(
        output.data.get("text/plain", "")
        for cell in code
        for output in cell.outputs
        if output.output_type == "execute_result"
    )
    out = tmp_path / "demo-output" / "custom-tasks"
    names = [name for name, _, _ in CUSTOM_TASKS]

    # the JSONL file and the CSV / DataFrame load as the tasks the notebook describes
    first_row = json.loads((out / "reversed_knowledge.jsonl").read_text("utf-8").splitlines()[0])
    assert first_row == {
        "task": "capital → country",
        "category": "Knowledge",
        "prompt": "Lima -> Peru\nDublin -> Ireland\nParis ->",
        "answer": " France",
        "distractor": " Italy",
    }
    for name, category, count in CUSTOM_TASKS[:4]:
        assert f"Task({name!r}, {count} examples, category={category!r})" in results
    # the CSV's demonstrations on one line; few_shot_task's three, one per line
    assert (
        "Example(prompt='young -> old , clean -> dirty , hot ->', answer=' cold',"
        " distractor=' warm')"
    ) in text
    assert re.search(
        r"^Example\(prompt='(\w+ -> \w+\\n){3}chien ->', answer=' dog', distractor=' cat',"
        r" source='chien'\)$",
        text,
        re.M,
    )
    # every task's clean accuracy, measured on all its examples
    for name, category, count in CUSTOM_TASKS:
        line = rf"^{re.escape(name)} +{category} +{count} examples, clean accuracy [01]\.\d\d$"
        assert re.search(line, text, re.M), name

    # each broken file is reported by name, line and problem
    for message in [
        "missing_answer.jsonl, line 2: missing 'answer'",
        "bad_json.jsonl, line 1: invalid JSON",
        "two_categories.jsonl, line 2: task 't' has category 'Geography' here but 'Knowledge'"
        " at line 1",
        "wrong_header.csv, line 1: missing column(s) ['prompt'] in the header",
    ]:
        assert re.search(rf"^TaskDataError: \S*{re.escape(message)}", text, re.M), message

    # one grid, on the Categories tab, finished, showing the saved scores
    ((_, grid),) = grid_views(nb)
    assert grid["shape"] == [len(CUSTOM_TASKS), n_layers, n_heads]
    assert grid["tab"] == "categories"
    assert grid["progress"].get("running") is False
    assert grid["progress"]["text"].startswith("done in")
    assert [(task["name"], task["category"]) for task in grid["tasks"]] == [
        (name, category) for name, category, _ in CUSTOM_TASKS
    ]
    scores = HeadScores.load(out / "scores.npz")
    assert scores.tasks == names
    assert scores.categories == {name: category for name, category, _ in CUSTOM_TASKS}
    assert scores.meta["examples"] == dict.fromkeys(names, CUSTOM_SCORED)
    assert np.isfinite(scores.values).all()
    np.testing.assert_array_equal(grid_values(grid), scores.values)
    assert f"saved {Path('demo-output', 'custom-tasks', 'scores.npz')}: {scores.shape}" in text

    # the printed results are those scores
    assert f"a uniform guess over {len(tokenizer)} tokens: {-np.log(len(tokenizer)):.3f}" in text
    for name in names:
        top = ", ".join(f"L{la}H{he} {value:+.3f}" for la, he, value in scores.top_heads(name, 3))
        assert f"baseline {scores.baseline[name]:7.3f}   top heads: {top}" in text, name
    comparisons = re.findall(
        r"^(.+) vs (.+): [0-5] of the top 5 heads shared, map correlation [+-]\d\.\d\d$",
        text,
        re.M,
    )
    assert comparisons == [
        ("capital → country", "country → capital"),
        ("language → country", "country → language"),
        ("antonym (one line)", "antonym"),
        ("French → English", "English → French"),
    ]
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns) == ["task", "category", "layer", "head", "importance"]
    assert len(table) == len(CUSTOM_TASKS) * n_layers * n_heads


# -- quickstart ------------------------------------------------------------------------------------


def test_quickstart_notebook(tmp_path):
    """Opens on the real model's shipped maps, then scores a slice of it live."""
    from headwidget.demo import DEMO_MODEL_NAME, load_demo_scores

    nb = run_notebook("quickstart.ipynb", tmp_path, timeout=900)
    assert errors(nb) == []
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    views = grid_views(nb)
    assert [index for index, _ in views] == [0, 1, 4]
    (_, cognitive), (_, operations), (_, live) = views
    for state, suite, tab in (
        (cognitive, "cognitive", "all"),
        (operations, "operations", "categories"),
    ):
        shipped = load_demo_scores(suite)
        assert state["tab"] == tab and state["title"] == DEMO_MODEL_NAME
        assert [t["name"] for t in state["tasks"]] == shipped.tasks
        np.testing.assert_array_equal(grid_values(state), shipped.values)

    shipped = load_demo_scores("operations")
    lines = stdout(code[3]).splitlines()
    assert len(lines) == len(shipped.tasks)
    for line, task in zip(lines, shipped.tasks, strict=True):
        layer, head, value = shipped.top_heads(task, 1)[0]
        assert line.startswith(task) and f"accuracy {shipped.accuracy[task]:.2f}" in line
        assert f"L{layer}.H{head} {value:+.2f}" in line

    saved = HeadScores.load(tmp_path / "demo-output" / "live.npz")
    assert saved.tasks == ["copying", "country → capital"] and saved.shape == (2, 30, 9)
    assert saved.meta["model"] == DEMO_MODEL_NAME and np.isfinite(saved.values).all()
    np.testing.assert_array_equal(grid_values(live), saved.values)
    assert re.fullmatch(
        r"270 heads × 2 tasks in \d+ s: \d+ ms per \(task, head\) for 3 examples\n",
        stdout(code[5]),
    )
    # top-k vs random-k by task and k (after validate's progress bar)
    (result,) = [out for out in code[6].outputs if out.output_type == "execute_result"]
    summary = result.data["text/plain"]
    assert "top_k" in summary and "random_k" in summary and "past tense" in summary
    assert (tmp_path / "demo-output" / "operations.html").is_file()
