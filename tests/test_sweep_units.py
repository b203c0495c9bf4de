"""Units of a sweep: how they are shared out, shard numbers from SLURM, provenance joining."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

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
    units = make_units("ablation", n_tasks=7, n_layers=n_layers)
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
    assert make_units("attribution", 3, 12) == make_units("projection", 3, 5)
    assert {u.layer for u in make_units("attribution", 3, 12)} == {ALL_LAYERS}
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
