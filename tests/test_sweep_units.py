"""Units of a sweep: how they are shared out, shard numbers from SLURM, provenance joining."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from headwidget.methods import METHODS
from headwidget.sweep import part_path, units_folder
from headwidget.sweep.assemble import combine_meta
from headwidget.sweep.distributed import Ranks, rank_device, ranks_from_env
from headwidget.sweep.units import (
    ALL_LAYERS,
    assign,
    make_units,
    parse_shard,
    shard_from_env,
    unit_costs,
)


def test_assign_covers_every_unit_once_balanced_deterministic_and_keeps_tasks_together() -> None:
    n_layers = 30
    units = make_units(METHODS["ablation"].unit, n_tasks=7, n_layers=n_layers)
    examples = [random.Random(t).randint(2, 40) for t in range(7)]
    costs = unit_costs(units, n_layers, examples)
    cost = dict(zip(units, costs, strict=True))
    for n in (1, 2, 3, 8, 64):
        shares = assign(units, costs, n)
        assert shares == assign(list(reversed(units)), list(reversed(costs)), n)
        flat = [u for share in shares for u in share]
        assert sorted(flat) == sorted(units) and len(flat) == len(units)
        loads = [sum(cost[u] for u in share) for share in shares]
        if n <= len(units):  # each share within about one unit of its fair part
            assert max(abs(load - sum(costs) / n) for load in loads) <= max(costs)
            assert all(shares)
        # consecutive runs: n - 1 cuts split at most n - 1 tasks, so few clean passes repeat
        assert sum(len({u.task for u in share}) for share in shares) <= 7 + n - 1
    # later layers are cheaper
    assert unit_costs(units[:2], n_layers, examples) == [examples[0] * 30.0, examples[0] * 29.0]


def test_whole_task_units_and_shard_numbers() -> None:
    assert make_units(METHODS["attribution"].unit, 3, 12) == make_units(
        METHODS["projection"].unit, 3, 5
    )
    assert {u.layer for u in make_units(METHODS["attribution"].unit, 3, 12)} == {ALL_LAYERS}
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    env = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert shard_from_env(env) == (2, 4)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}) == (1, 2)
    assert shard_from_env({"SLURM_JOB_ID": "5"}) is None
    assert part_path("out/s.npz", 1, 8) == Path("out/s.part-1-of-8.npz")
    assert units_folder("out/s.npz") == Path("out/s.npz.units")


def test_combine_meta_joins_per_task_entries_and_names_a_difference() -> None:
    names = ["a", "b"]
    a = {"model": "m", "examples": {"a": 3}, "created": "2026-01-02", "seconds": 1.0, "heads": {}}
    b = {"model": "m", "examples": {"b": 4}, "created": "2026-01-01", "seconds": 2.0}
    joined = combine_meta([a, b], names)
    assert joined["examples"] == {"a": 3, "b": 4} and joined["created"] == "2026-01-01"
    assert "heads" not in joined
    with pytest.raises(ValueError, match=r"part 2 differs from part 1 in meta\['model'\]"):
        combine_meta([a, {**b, "model": "n"}], names, ["part 1", "part 2"])


def test_ranks_and_their_devices() -> None:
    assert not ranks_from_env({}).distributed
    ranks = ranks_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world, ranks.local_rank) == (3, 4, 1)
    assert rank_device(None, ranks, cuda=True) == "cuda:1"
    assert rank_device("cuda", ranks, cuda=True) == "cuda:1"
    assert rank_device("cuda:0", ranks, cuda=True) == "cuda:0"  # as the user asked
    assert rank_device(None, ranks, cuda=False) == "cpu"
    assert rank_device(None, Ranks(), cuda=True) is None  # one process: the caller decides


def test_units_keep_per_example_effects_and_an_old_folder_is_refused(tmp_path) -> None:
    """A unit file and a task's clean file round-trip per-example data exactly; assemble
    builds effects/clean/examples as score_heads does; a format-1 folder is refused."""
    import json

    import numpy as np

    from headwidget.sweep import CheckpointMismatchError
    from headwidget.sweep.assemble import assemble
    from headwidget.sweep.checkpoint import UNITS_FORMAT, TaskInfo, UnitRecord, UnitStore
    from headwidget.sweep.units import Unit

    rng = np.random.default_rng(0)
    fp = {"model": "m", "format": UNITS_FORMAT, "shape": [2, 3], "keep_examples": True}
    store = UnitStore(tmp_path / "u", fp, examples=[5, 1])
    store.open()
    records = []
    for layer in range(2):
        each = rng.normal(size=(1, 3, 5)).astype(np.float32)
        record = UnitRecord(Unit(0, layer), each.mean(-1), np.ones((1, 3), bool), each)
        store.save_unit(record)
        records.append(store.load_unit(record.unit))
        assert np.array_equal(records[-1].effects, each) and records[-1].effects.dtype == "f4"
    lean = UnitStore(tmp_path / "lean", {**fp, "keep_examples": False})
    lean.open()
    lean.save_unit(UnitRecord(Unit(1, 0), np.zeros((1, 3)), np.ones((1, 3), bool)))
    assert lean.load_unit(Unit(1, 0)).effects is None  # not kept
    clean = rng.normal(size=5)
    store.save_info(TaskInfo(0, float(clean.mean()), 1.0, {}, clean))
    info = store.load_info(0)
    assert np.array_equal(info.clean, clean) and info.clean.dtype == np.float64
    texts = {"a": [(f"p{i}", f" x{i}") for i in range(5)], "b": [("q", " y")]}
    scores = assemble(["a", "b"], {}, {}, "ablation", (2, 3), records, [info], examples=texts)
    assert list(scores.effects) == ["a"] and list(scores.examples) == ["a"]
    assert np.array_equal(scores.effects["a"][1], records[1].effects[0])
    assert np.array_equal(scores.clean["a"], clean) and scores.examples["a"] == texts["a"]
    # a folder written before per-example effects (no "format") is refused, saying so
    old = tmp_path / "old"
    old.mkdir()
    (old / "fingerprint.json").write_text(json.dumps({"model": "m"}))
    with pytest.raises(CheckpointMismatchError, match="format 1"):
        UnitStore(old, fp).open()


def test_on_block_examples_streams_what_the_result_keeps() -> None:
    """score_heads(on_block_examples=...) gets every block's per-example effects before its
    on_block, equal to HeadScores.effects; none when keep_examples=False."""
    import numpy as np
    from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

    from headwidget import Task, score_heads

    tok = word_tokenizer()
    model = tiny_model("llama", vocab_size=len(tok), n_layers=2)
    task = Task("t", list(MIXED_EXAMPLES))
    calls: list[tuple] = []

    def on_examples(name, layer, heads, effects):
        calls.append(("examples", layer, heads, effects))

    def on_block(name, layer, heads, values, exact):
        calls.append(("block", layer, heads, values))

    scores = score_heads(
        model, tok, task, progress=False, on_block=on_block, on_block_examples=on_examples
    )
    assert [c[:2] for c in calls] == [("examples", 0), ("block", 0), ("examples", 1), ("block", 1)]
    for kind, layer, heads, data in calls:
        if kind == "examples":
            assert data.dtype == np.float32 and data.shape == (len(heads), len(MIXED_EXAMPLES))
            assert np.array_equal(scores.effects["t"][layer, heads], data)
    calls.clear()
    score_heads(
        model, tok, task, progress=False, keep_examples=False, on_block_examples=on_examples
    )
    assert not calls


def test_the_fingerprint_records_method_options_with_their_defaults() -> None:
    """A resumed sweep continues one whose options mean the same computation, spelled out or
    not, and refuses one computed under other option values (e.g. another default)."""
    from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

    from headwidget import Task
    from headwidget.sweep.runner import fingerprint

    tok = word_tokenizer()
    model = tiny_model("llama", vocab_size=len(tok))
    tasks = [Task("words", list(MIXED_EXAMPLES))]

    def stamp(**options):
        return fingerprint(
            model, "tiny", tasks, method="attribution", ablation="mean", metric="logprob",
            method_options=options,
        )  # fmt: skip

    short = stamp(refine=20)
    assert short["options"]["refine_sensitive"] == 2 and short["options"]["refine_random"] == 10
    assert stamp(refine=20, refine_sensitive=2, seed=0) == short
    assert stamp(refine=20, refine_sensitive=0) != short
    assert stamp()["options"] == {}  # no options: nothing to resolve


def test_slurm_stepped_and_list_arrays_give_their_share() -> None:
    """``--array=0-12:4`` (ids 0, 4, 8, 12) is 4 shards; a list of evenly spaced ids too, even
    when SLURM reports no step; N is the count of ids, never the id range."""
    stepped = {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "12"}
    stepped |= {"SLURM_ARRAY_TASK_STEP": "4", "SLURM_ARRAY_TASK_COUNT": "4"}
    for task_id, index in (("0", 0), ("4", 1), ("8", 2), ("12", 3)):
        assert shard_from_env({**stepped, "SLURM_ARRAY_TASK_ID": task_id}) == (index, 4)
    listed = {"SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "9"}
    listed |= {"SLURM_ARRAY_TASK_STEP": "1", "SLURM_ARRAY_TASK_COUNT": "3"}  # --array=3,6,9
    assert shard_from_env({**listed, "SLURM_ARRAY_TASK_ID": "6"}) == (1, 3)
    assert shard_from_env({**listed, "SLURM_ARRAY_TASK_ID": "9"}) == (2, 3)
    alone = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "7"}
    assert shard_from_env({**alone, "SLURM_ARRAY_TASK_COUNT": "1"}) == (0, 1)


def without(env: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != key}


def test_slurm_variables_that_are_malformed_or_missing_are_named() -> None:
    """Never the whole sweep in every array task: a clear error naming the variable."""
    good = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "2"}
    cases = [
        ({**good, "SLURM_ARRAY_TASK_ID": "one"}, "SLURM_ARRAY_TASK_ID='one'"),
        ({**good, "SLURM_ARRAY_TASK_ID": ""}, "SLURM_ARRAY_TASK_ID"),
        (without(good, "SLURM_ARRAY_TASK_COUNT"), "SLURM_ARRAY_TASK_COUNT is not set"),
        (without(good, "SLURM_ARRAY_TASK_ID"), "SLURM_ARRAY_TASK_ID is not set"),
        ({**good, "SLURM_ARRAY_TASK_COUNT": "0"}, "SLURM_ARRAY_TASK_COUNT"),
        ({**good, "SLURM_ARRAY_TASK_COUNT": "2x"}, "SLURM_ARRAY_TASK_COUNT"),
        ({**good, "SLURM_ARRAY_TASK_MIN": "-"}, "SLURM_ARRAY_TASK_MIN"),
        ({**good, "SLURM_ARRAY_TASK_STEP": "0"}, "SLURM_ARRAY_TASK_STEP"),
        ({**good, "SLURM_ARRAY_TASK_ID": "5"}, "SLURM_ARRAY_TASK_ID=5"),  # past the last id
        # ids 0, 1, 5 (--array=0,1,5): not evenly spaced, so task 5's share is unknown
        ({**good, "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MAX": "5",
          "SLURM_ARRAY_TASK_COUNT": "3"}, "not evenly spaced"),
    ]  # fmt: skip
    for env, says in cases:
        with pytest.raises(ValueError, match=re.escape(says)) as raised:
            shard_from_env(env)
        assert "\n" not in str(raised.value)


def test_torchrun_variables_that_are_malformed_or_missing_are_named() -> None:
    cases = [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two'"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE"),
        ({"WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK"),
        ({"WORLD_SIZE": "2", "RANK": "x", "LOCAL_RANK": "0"}, "RANK='x'"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "RANK=2"),
        ({"WORLD_SIZE": "2", "RANK": "1"}, "LOCAL_RANK"),
        ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "-1"}, "LOCAL_RANK"),
    ]
    for env, says in cases:
        with pytest.raises(ValueError, match=re.escape(says)):
            ranks_from_env(env)
    assert ranks_from_env({"WORLD_SIZE": "1", "RANK": "junk"}) == Ranks()  # one process


def test_a_rank_whose_peers_never_join_fails_within_the_join_limit(monkeypatch) -> None:
    """WORLD_SIZE > 1 but no peer: a clear error once HEADWIDGET_JOIN_TIMEOUT has passed
    (default a few minutes), for rank 0 (which hosts the store) and for another rank."""
    import socket

    from headwidget.sweep.distributed import JOIN_TIMEOUT_VARIABLE, RanksJoinError, start

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    monkeypatch.setenv(JOIN_TIMEOUT_VARIABLE, "1")
    for rank in (0, 1):
        began = time.perf_counter()
        with pytest.raises(RanksJoinError, match=f"rank {rank} of 2.*1 s.*{JOIN_TIMEOUT_VARIABLE}"):
            start(Ranks(rank, 2, rank), "cpu")
        assert time.perf_counter() - began < 20
    monkeypatch.setenv(JOIN_TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ValueError, match=f"{JOIN_TIMEOUT_VARIABLE}='soon'"):
        start(Ranks(0, 2, 0), "cpu")
