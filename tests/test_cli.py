"""The ``headwidget`` command end to end, on tiny saved models: score, show, merge, torchrun
ranks, SLURM-style shards, resume after SIGKILL, out-of-memory retry and disk offload."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import HeadScores, load_tasks, score_heads
from headwidget.cli import main
from headwidget.sweep import part_path, run_sweep, units_folder
from headwidget.sweep.assemble import VARYING

ROOT = Path(__file__).resolve().parents[1]
N_LAYERS = 4
N_UNITS = 3 * N_LAYERS  # 3 tasks x 4 layers


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout first on the path, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for key in [k for k in env if k.startswith(("SLURM_ARRAY", "WORLD_SIZE", "RANK"))]:
        del env[key]
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same(a: HeadScores, b: HeadScores, *, atol: float = 0.0) -> None:
    """Equal as one run: scores, exact mask, clean metric and accuracy, per-example effects,
    clean metric and texts, provenance except the fields that say when and where (VARYING)."""
    assert a.tasks == b.tasks and a.method == b.method
    if atol:
        np.testing.assert_allclose(a.values, b.values, atol=atol, rtol=0)
    else:
        np.testing.assert_array_equal(a.values, b.values)
    assert (a.exact is None) == (b.exact is None)
    if a.exact is not None:
        np.testing.assert_array_equal(a.exact, b.exact)
    assert a.baseline.keys() == b.baseline.keys() and a.accuracy == b.accuracy
    for name in a.baseline:
        assert a.baseline[name] == pytest.approx(b.baseline[name], abs=atol)
    assert a.categories == b.categories and a.descriptions == b.descriptions
    assert a.effects.keys() == b.effects.keys() and a.clean.keys() == b.clean.keys()
    assert a.examples == b.examples
    for name in a.effects:
        np.testing.assert_allclose(a.effects[name], b.effects[name], atol=atol, rtol=0)
        assert a.effects[name].dtype == b.effects[name].dtype == np.float32
    for name in a.clean:
        np.testing.assert_allclose(a.clean[name], b.clean[name], atol=atol, rtol=0)
    strip = lambda meta: {k: v for k, v in meta.items() if k not in VARYING}  # noqa: E731
    assert strip(a.meta) == strip(b.meta)


@pytest.fixture(autouse=True)
def _not_in_a_cluster_job(monkeypatch):
    """A test run inside a SLURM array or torchrun must not shard these runs."""
    for key in [k for k in os.environ if k.startswith("SLURM_ARRAY") or k == "WORLD_SIZE"]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved 4-layer tiny Llama (+ tokenizer), a second one, and 3 JSONL tasks."""
    base = tmp_path_factory.mktemp("cli")
    tok = word_tokenizer()
    for name, seed in (("model", 0), ("other", 1)):
        model = tiny_model("llama", vocab_size=len(tok), n_layers=N_LAYERS, seed=seed)
        model.save_pretrained(base / name)
        tok.save_pretrained(base / name)
    with open(base / "tasks.jsonl", "w") as fh:
        for task in ("alpha", "beta", "gamma"):
            for prompt, answer in MIXED_EXAMPLES:
                fh.write(json.dumps({"task": task, "prompt": prompt, "answer": answer}) + "\n")
    return base


def _score(files: Path, out: Path, *extra: str) -> int:
    argv = ["score", str(files / "model"), "--tasks", str(files / "tasks.jsonl"), "-o", str(out)]
    device = [] if "--device-map" in extra else ["--device", "cpu"]  # also on a GPU machine
    return main([*argv, *device, *extra])


@pytest.fixture(scope="module")
def single(files):
    """The reference: one process, every unit."""
    out = files / "single.npz"
    assert _score(files, out, "-q") == 0
    return HeadScores.load(out)


def test_score_equals_score_heads_then_show(files, single, tmp_path, capsys) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(files / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(files / "model")
    direct = score_heads(model, tokenizer, load_tasks(files / "tasks.jsonl"), progress=False)
    _same(single, direct)  # per-example effects, clean metric and texts included
    assert set(single.effects) == set(single.tasks) and set(single.examples) == set(single.tasks)
    assert single.effects["beta"].shape == (N_LAYERS, single.n_heads, len(MIXED_EXAMPLES))
    assert not np.isnan(single.effects["beta"]).any()
    assert not units_folder(files / "single.npz").exists()  # removed after success

    html, png = tmp_path / "page.html", tmp_path / "fig.png"
    assert main(["show", str(files / "single.npz"), "--top", "3", "--png", str(png)]) == 0
    printed = capsys.readouterr().out
    top = single.top_heads("beta", k=3)
    assert f"L{top[0][0]}H{top[0][1]}" in printed and "clean accuracy" in printed
    assert printed.count("   1. L") == 3  # one list per task
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from headwidget.views.bundle import ESM_PATH

    if ESM_PATH.is_file():  # the front-end bundle is built (it is in CI)
        assert main(["show", str(files / "single.npz"), "--html", str(html)]) == 0
        assert "<html" in html.read_text("utf-8").lower()


def test_show_prints_how_sure_each_map_is(tmp_path, capsys) -> None:
    """Next to each task's accuracy and top heads: its split-half reliability and the examples
    a reliability of 0.9 needs, or why there is none."""
    rng = np.random.default_rng(0)
    true = np.where(rng.random((4, 3)) < 0.3, 1.0, 0.0)[..., None]
    effects = {
        "kept": (true + 2 * rng.normal(size=(4, 3, 20))).astype(np.float32),
        "few": rng.normal(size=(4, 3, 3)).astype(np.float32),
    }
    tasks = ["kept", "means only", "few"]
    values = np.stack([effects.get(t, np.ones((4, 3, 1))).mean(-1) for t in tasks])
    exact = np.ones(values.shape, bool)
    exact[0, 0] = False  # attribution: layer 0 of "kept" (3 cells) is first-order estimates
    scores = HeadScores(
        values, tasks, accuracy={"kept": 0.9}, method="attribution", exact=exact, effects=effects
    )
    path = scores.save(tmp_path / "s.npz")
    assert main(["show", str(path), "--top", "2"]) == 0
    printed = capsys.readouterr().out
    r, needed = scores.reliability()["kept"], scores.examples_needed(0.9)["kept"]
    assert 0 < r < 0.9 and needed > 20
    kept = printed.split("\nkept")[1]
    assert kept.startswith("  (clean accuracy 0.90)\n")
    assert (
        f"  reliability {r:.2f} over 20 examples; 0.9 needs ~{needed} examples (3 cells from"
        " per-example first-order estimates)\n    1. L" in kept
    )
    assert "means only\n  reliability: no per-example effects\n    1. L" in printed
    assert "few\n  reliability: not measurable (3 examples;" in printed


def test_help_usage_and_failures(files, tmp_path, capsys) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "headwidget", "--help"], env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0 and all(c in done.stdout for c in ("score", "merge", "show"))
    with pytest.raises(SystemExit) as exited:
        main(["score", "--help"])
    assert exited.value.code == 0
    helped = capsys.readouterr().out
    for flag in ("--shard", "--resume", "--device-map", "torchrun", "SLURM", "merge"):
        assert flag in helped
    with pytest.raises(SystemExit) as exited:  # argparse: missing --tasks
        main(["score", str(files / "model"), "-o", str(tmp_path / "x.npz")])
    assert exited.value.code == 2
    assert _score(files, tmp_path / "x.npz", "--shard", "2/2") == 2
    assert "0 <= I < N" in capsys.readouterr().err
    assert _score(files, tmp_path / "x.csv", "--shard", "0/2") == 2
    assert "*.npz" in capsys.readouterr().err
    assert _score(files, tmp_path / "x.npz", "--shard", "2/2") == 2
    assert "0 <= I < N" in capsys.readouterr().err
    assert _score(files, tmp_path / "x.npz", "-O", "steps=2") == 2  # not an ablation option
    assert "does not take" in capsys.readouterr().err
    assert main(["score", "demo", "--tasks", "nosuchsuite", "-o", str(tmp_path / "x.npz")]) == 2
    assert _score(files, tmp_path / "x.npz", "--only", "alpha", "delta") == 2
    assert "'delta'" in capsys.readouterr().err
    # failures: exit 1 and one clear line
    (tmp_path / "empty").mkdir()
    argv = ["score", str(tmp_path / "empty"), "--tasks", str(files / "tasks.jsonl")]
    assert main([*argv, "-o", str(tmp_path / "x.npz"), "-q"]) == 1
    assert "headwidget score: error:" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n')
    argv = ["score", str(files / "model"), "--tasks", str(bad), "-o", str(tmp_path / "x.npz")]
    assert main(argv) == 1
    assert "bad.jsonl" in capsys.readouterr().err
    assert main(["show", str(bad)]) == 1
    assert _score(files, tmp_path / "only.npz", "--only", "gamma", "alpha", "-q") == 0
    assert HeadScores.load(tmp_path / "only.npz").tasks == ["alpha", "gamma"]


def test_torchrun_two_ranks_equal_one_process(files, single) -> None:
    out = files / "ranks.npz"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "headwidget", "score", str(files / "model"), "--tasks", str(files / "tasks.jsonl"),
        "-o", str(out), "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0/2: scored 5 units" in done.stderr and "rank 1/2: scored 7 units" in done.stderr
    _same(HeadScores.load(out), single)


def test_two_shards_and_merge_equal_one_run(files, single, tmp_path, monkeypatch) -> None:
    out = tmp_path / "sweep.npz"
    assert _score(files, out, "--shard", "0/2", "-q") == 0
    # the second shard as a SLURM array task (ids 5..6) sees it: no --shard
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "6")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    assert _score(files, out, "-q") == 0
    parts = [part_path(out, i, 2) for i in range(2)]
    assert all(p.is_file() for p in parts)
    halves = [HeadScores.load(p) for p in parts]
    # balanced by cost: 5 units (layers 0-3 of alpha, 0 of beta) against 7 cheaper ones
    assert [len(h.meta["shard"]["units"]) for h in halves] == [5, 7]
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "merged.npz")]) == 0
    _same(HeadScores.load(tmp_path / "merged.npz"), single)


def test_merge_refuses_parts_that_do_not_belong_together(files, single, tmp_path, capsys) -> None:
    def part(name: str, index: int, *extra: str, model: str = "model") -> str:
        argv = ["score", str(files / model), "--tasks", str(files / "tasks.jsonl"), "--device=cpu"]
        assert main([*argv, "-o", str(tmp_path / name), "--shard", f"{index}/2", "-q", *extra]) == 0
        return str(part_path(tmp_path / name, index, 2))

    zero, one = part("a.npz", 0), part("a.npz", 1)
    other_model = part("b.npz", 1, model="other")
    other_options = part("c.npz", 1, "--ablation", "zero")
    other_method = part("d.npz", 1, "--method", "attribution")
    other_data = part("e.npz", 1, "--max-examples", "4")
    no_examples = part("f.npz", 1, "--no-examples")
    assert not HeadScores.load(no_examples).effects and not HeadScores.load(no_examples).clean
    cases = [
        ([zero, other_model], ["b.part-1-of-2.npz", "model"]),
        ([zero, other_options], ["c.part-1-of-2.npz", "ablation", "mean", "zero"]),
        ([zero, other_method], ["d.part-1-of-2.npz", "method", "attribution"]),
        ([zero, other_data], ["e.part-1-of-2.npz", "task_data"]),
        ([zero, no_examples], ["f.part-1-of-2.npz", "keep_examples"]),
        ([zero, one, zero], ["both hold"]),
        ([zero], ["missing cells", "7 unit(s)", "shard(s) [1] of 2"]),
        ([zero, str(files / "single.npz")], ["not a part file"]),
    ]
    for parts, words in cases:
        assert main(["merge", *parts, "-o", str(tmp_path / "m.npz")]) == 1
        err = capsys.readouterr().err
        assert all(word in err for word in words), (words, err)
    assert not (tmp_path / "m.npz").exists()


_SLOW_RUN = """
import sys, time
from headwidget.sweep import checkpoint
save = checkpoint.UnitStore.save_unit
def slow_save(self, record):
    save(self, record)
    time.sleep(0.4)  # time to be killed between units (and sometimes inside one)
checkpoint.UnitStore.save_unit = slow_save
from headwidget.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_slow_run(files: Path, out: Path) -> tuple[subprocess.Popen, list[str]]:
    """``headwidget score`` of the tiny model's tasks into ``out`` on the CPU in a child process,
    slowed after each unit (:data:`_SLOW_RUN`; its stderr discarded), and its arguments, to run
    the same sweep again here."""
    argv = ["score", str(files / "model"), "--tasks", str(files / "tasks.jsonl"), "-o", str(out)]
    argv += ["--device", "cpu"]
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN, *argv], env=_env(), stderr=subprocess.DEVNULL
    )
    return child, argv


def test_sigkill_then_resume_recomputes_no_finished_unit(files, single, tmp_path, capsys) -> None:
    out = tmp_path / "killed.npz"
    folder = units_folder(out)
    child, argv = start_slow_run(files, out)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("t*-l*.npz"))) < 4 and time.monotonic() < deadline:
        assert child.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    assert child.wait(60) == -signal.SIGKILL
    assert not out.exists()
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("t*.npz")}
    assert 4 <= len(finished) < N_UNITS

    assert main(argv + ["-q"]) == 1  # without --resume: refused, nothing overwritten
    assert "pass --resume" in capsys.readouterr().err
    assert main(argv + ["--resume", "--keep-units"]) == 0
    err = capsys.readouterr().err
    k = len(finished)
    assert f"resumed: {k} of {N_UNITS} units already done" in err
    assert f"scored {N_UNITS - k} units ({k} reused)" in err
    assert err.count("done: ") == N_UNITS - k  # one line per unit scored
    for name, stamp in finished.items():  # the finished units' files were not rewritten
        path = folder / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp
    assert len(list(folder.glob("t*-l*.npz"))) == N_UNITS
    _same(HeadScores.load(out), single)
    # killed after a task's last unit but before its clean metric was saved: only that redone
    (folder / "t0001-clean.json").unlink()
    assert main(argv + ["--resume", "--keep-units"]) == 0
    err = capsys.readouterr().err
    assert f"resumed: {N_UNITS} of {N_UNITS}" in err and "scored 0 units" in err
    _same(HeadScores.load(out), single)
    # a units folder of an older headwidget (format 1: no per-example effects) is refused
    stamp = folder / "fingerprint.json"
    old = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({k: v for k, v in old.items() if k != "format"}))
    assert main(argv + ["--resume", "-q"]) == 1
    assert "format 1" in capsys.readouterr().err
    stamp.write_text(json.dumps(old))
    # a units folder of another sweep is refused
    assert main(argv + ["--resume", "--metric", "prob", "-q"]) == 1
    assert (
        "different sweep" in capsys.readouterr().err
        and "metric" in capsys.readouterr().err + "metric"
    )


def test_out_of_memory_halves_the_batch_then_fails_clearly(files, single, tmp_path, monkeypatch):
    import torch

    from headwidget.sweep import OutOfMemoryAtBatchOne, runner

    real = runner.score_heads
    seen: list[int | None] = []

    def tight(*args, options, **kwargs):  # the runner passes one options record
        batch_size = options.batch_size
        seen.append(batch_size)
        if batch_size is None or batch_size > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, options=options, **kwargs)

    monkeypatch.setattr(runner, "score_heads", tight)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(files / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(files / "model")
    tasks = load_tasks(files / "tasks.jsonl")
    lines: list[str] = []
    report = run_sweep(
        model, tokenizer, tasks, tmp_path / "oom.npz", model_id="m", log=lines.append
    )
    # auto -> half of one block (5 examples x 4 heads): 10, then 5, then 2, kept for later tasks
    assert seen[:4] == [None, 10, 5, 2] and set(seen[4:]) == {2}
    assert sum("retrying" in line for line in lines) == 3 and report.scored == N_UNITS
    scored = HeadScores.load(tmp_path / "oom.npz")
    np.testing.assert_allclose(scored.values, single.values, atol=1e-5, rtol=0)

    def never(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(runner, "score_heads", never)
    with pytest.raises(OutOfMemoryAtBatchOne, match="even at batch size 1"):
        run_sweep(model, tokenizer, tasks, tmp_path / "never.npz", model_id="m", log=lines.append)


def test_disk_offload_scores_like_the_plain_model(files, single, tmp_path) -> None:
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_map = {
        "model.embed_tokens": "cpu",
        "model.rotary_emb": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "cpu",
        "model.layers.3": "disk",
        "model.norm": "cpu",
        "lm_head": "cpu",
    }
    model = AutoModelForCausalLM.from_pretrained(
        files / "model", dtype="float32", device_map=device_map, offload_folder=tmp_path / "off"
    )
    assert set(model.hf_device_map.values()) == {"cpu", "disk"}
    assert any(p.device.type == "meta" for p in model.parameters())  # really not in memory
    tokenizer = AutoTokenizer.from_pretrained(files / "model")
    out = tmp_path / "offloaded.npz"
    run_sweep(model, tokenizer, load_tasks(files / "tasks.jsonl"), out,
              model_id=str(files / "model"), log=lambda line: None)  # fmt: skip
    offloaded = HeadScores.load(out)
    np.testing.assert_allclose(offloaded.values, single.values, atol=1e-5, rtol=0)
    assert offloaded.accuracy == single.accuracy
    # and the command's --device-map auto (on this machine: all in CPU memory)
    argv = ["--device-map", "auto", "--offload-dir", str(tmp_path / "off2"), "-q"]
    assert _score(files, tmp_path / "auto.npz", *argv) == 0
    _same(HeadScores.load(tmp_path / "auto.npz"), single, atol=1e-5)


def test_attribution_units_are_whole_tasks(files, tmp_path, capsys) -> None:
    """Attribution scores a task's heads at once: a unit is a task; shards + merge == one run,
    per-task provenance (agreement) joined."""
    # refine_random (seeded by the task's name): the sweep's sample equals one call's
    opts = ["--method", "attribution", "-O", "screen=2", "-O", "refine=3", "-O", "refine_random=2"]
    opts += ["-q"]
    assert _score(files, tmp_path / "one.npz", *opts) == 0
    for i in range(2):
        assert _score(files, tmp_path / "att.npz", *opts, "--shard", f"{i}/2") == 0
    parts = [str(part_path(tmp_path / "att.npz", i, 2)) for i in range(2)]
    assert sorted(len(HeadScores.load(p).meta["shard"]["units"]) for p in parts) == [1, 2]
    capsys.readouterr()
    assert _score(files, tmp_path / "att.npz", *opts[:-1], "--shard", "1/2", "--resume") == 0
    err = capsys.readouterr().err  # whole-task units with effects pass the resume's checks
    assert "scored 0 units" in err and "set aside" not in err, err
    assert main(["merge", *parts, "-o", str(tmp_path / "merged.npz")]) == 0
    one, merged = HeadScores.load(tmp_path / "one.npz"), HeadScores.load(tmp_path / "merged.npz")
    _same(merged, one)
    assert one.method == "attribution" and set(one.meta["agreement"]) == set(one.tasks)
    # per-example effects as the direct call keeps them: exact cells replace approximate ones
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(files / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(files / "model")
    tasks = load_tasks(files / "tasks.jsonl")
    options = {"screen": 2, "refine": 3, "refine_random": 2}
    direct = score_heads(model, tokenizer, tasks, method="attribution", progress=False, **options)
    _same(one, direct)
    assert not direct.exact.all() and direct.exact.any() and set(one.effects) == set(one.tasks)
    exact_cell = np.argwhere(direct.exact[0])[-1]  # a refined cell: its exact per-example drop
    np.testing.assert_allclose(
        one.effects["alpha"][tuple(exact_cell)].mean(), one.values[0][tuple(exact_cell)], atol=1e-5
    )


def test_projection_sweep_equals_score_heads(tmp_path) -> None:
    """Projection (weights only): a unit is a task; the sweep equals one score_heads call."""
    from tiny_models import suite_tokenizer

    from headwidget import load_suite

    names = ["copying", "country → capital", "antonym"]
    tasks = load_suite("operations", max_examples=40, tasks=names)
    tokenizer = suite_tokenizer(tasks)
    model = tiny_model("llama", vocab_size=len(tokenizer), n_layers=3)
    direct = score_heads(model, tokenizer, tasks, method="projection", min_pairs=5, progress=False)
    for i in range(2):
        run_sweep(
            model, tokenizer, tasks, tmp_path / "p.npz", model_id="tiny", shard=(i, 2),
            method="projection", method_options={"min_pairs": 5}, log=lambda line: None,
        )  # fmt: skip
    parts = [str(part_path(tmp_path / "p.npz", i, 2)) for i in range(2)]
    lines: list[str] = []
    run_sweep(
        model, tokenizer, tasks, tmp_path / "p.npz", model_id="tiny", shard=(0, 2), resume=True,
        method="projection", method_options={"min_pairs": 5}, log=lines.append,
    )  # fmt: skip
    assert "scored 0 units (1 reused)" in lines and not any("set aside" in x for x in lines)
    assert main(["merge", *parts, "-o", str(tmp_path / "merged.npz")]) == 0
    merged = HeadScores.load(tmp_path / "merged.npz")
    _same(merged, direct)
    assert merged.meta["pairs"] == direct.meta["pairs"] and not merged.baseline
    assert not merged.effects and not merged.clean and not merged.examples  # weights only


LAYOUT_MODULE = """
from headwidget import HeadLayout


def llama_by_hand(model):
    return HeadLayout(
        layers=model.model.layers,
        out_proj="self_attn.o_proj",
        n_heads=model.config.num_attention_heads,
        final=lambda h: model.lm_head(model.model.norm(h)),
        name="by hand",
    )


not_a_function = 3


def returns_nothing(model):
    return None
"""


def test_head_layout_travels_through_the_command(files, single, tmp_path, capsys, monkeypatch):
    """``--head-layout MODULE:NAME`` scores with that layout (same scores as the built-in one),
    recorded in the sweep's fingerprint; a bad spec is a usage error before any scoring."""
    (tmp_path / "my_layouts.py").write_text(LAYOUT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "by_hand.npz"
    assert (
        _score(files, out, "-q", "--keep-units", "--head-layout", "my_layouts:llama_by_hand") == 0
    )
    _same(HeadScores.load(out), single, atol=1e-6)
    stamp = json.loads((units_folder(out) / "fingerprint.json").read_text())
    assert stamp["head_layout"][0] == "by hand"
    for spec, says in (
        ("my_layouts", "MODULE:NAME"),
        ("no_such_module:f", "ModuleNotFoundError"),
        ("my_layouts:missing", "AttributeError"),
        ("my_layouts:not_a_function", "must name a function"),
        ("my_layouts:returns_nothing", "not a headwidget.HeadLayout"),
    ):
        assert _score(files, tmp_path / "bad.npz", "-q", "--head-layout", spec) == 2, spec
        assert says in capsys.readouterr().err, spec
    assert not (tmp_path / "bad.npz").exists()


# -- the units folder as untrusted input ------------------------------------------------------


def _one_error(err: str) -> str:
    """The one line of ``err`` that says what failed (model loading may print progress)."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def _rewrite(path: Path, **change) -> None:
    """Save the unit file ``path`` again with some arrays replaced (None: dropped)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(change)
    with open(path, "wb") as fh:
        np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})


def test_resume_sets_aside_damaged_or_foreign_units_and_scores_them_again(
    files, single, tmp_path, capsys
) -> None:
    """A unit that cannot be read or belongs to another sweep is named in one line, renamed
    (not deleted) and scored again; the resumed file equals an uninterrupted run."""
    out = tmp_path / "r.npz"
    folder = units_folder(out)
    assert _score(files, out, "-q", "--keep-units") == 0
    other = tmp_path / "o.npz"  # another model's sweep: same file names
    argv = ["score", str(files / "other"), "--tasks", str(files / "tasks.jsonl"), "--only", "alpha"]
    assert main([*argv, "-o", str(other), "--device", "cpu", "-q", "--keep-units"]) == 0
    foreign = (units_folder(other) / "t0000-l001.npz").read_bytes()
    (folder / "t0000-l001.npz").write_bytes(foreign)
    whole = (folder / "t0000-l002.npz").read_bytes()
    (folder / "t0000-l002.npz").write_bytes(whole[: len(whole) // 2])  # truncated
    _rewrite(folder / "t0001-l000.npz", values=np.zeros((2, 2), np.float32))
    _rewrite(folder / "t0001-l001.npz", values=np.zeros((1, 4), np.complex64))
    _rewrite(folder / "t0001-l002.npz", effects=None)  # its per-example effects gone
    (folder / "t0002-l003.npz").write_bytes(b"")
    (folder / "t0002-clean.json").write_text("{")
    (folder / "t0001-clean.json").write_text("[1]")
    assert _score(files, out, "--resume") == 0
    err = capsys.readouterr().err
    rejected = ["t0000-l001", "t0000-l002", "t0001-l000", "t0001-l001", "t0001-l002", "t0002-l003"]
    for key in rejected:
        lines = [line for line in err.splitlines() if f"unit {key}:" in line]
        assert len(lines) == 1 and "scoring it again" in lines[0], (key, err)
        assert (folder / f"{key}.npz.rejected").is_file()  # set aside, not deleted
    assert "another sweep" in next(line for line in err.splitlines() if "t0000-l001:" in line)
    for name in ("t0001-clean.json", "t0002-clean.json"):
        assert sum(f"{name} (task" in line for line in err.splitlines()) == 1, (name, err)
        assert (folder / f"{name}.rejected").is_file()
    assert f"resumed: {N_UNITS - 6} of {N_UNITS} units already done" in err
    assert "scored 6 units" in err
    _same(HeadScores.load(out), single)
    assert (folder / "t0000-l001.npz.rejected").read_bytes() == foreign  # kept as it was
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{key}.npz.rejected" for key in rejected]
        + ["t0001-clean.json.rejected", "t0002-clean.json.rejected"]
    )  # all that the run wrote is gone; what it set aside is kept, and said so
    assert "kept" in err


def test_a_units_folder_that_is_not_ours_is_refused_never_adopted_nor_deleted(
    files, tmp_path, capsys
) -> None:
    """No fingerprint but some file in it, a fingerprint deleted from a folder of units, a
    folder that is a symbolic link: refused before any scoring, nothing in them touched."""
    out = tmp_path / "mine.npz"
    folder = units_folder(out)
    folder.mkdir()
    (folder / "my-results.csv").write_text("task,score\n")
    assert _score(files, out, "-q", "--only", "alpha") == 1
    err = _one_error(capsys.readouterr().err)
    assert "fingerprint.json" in err and "my-results.csv" in err
    assert sorted(os.listdir(folder)) == ["my-results.csv"] and not out.exists()

    kept = tmp_path / "kept.npz"
    assert _score(files, kept, "-q", "--only", "alpha", "--keep-units") == 0
    (units_folder(kept) / "fingerprint.json").unlink()
    before = sorted(os.listdir(units_folder(kept)))
    assert _score(files, kept, "-q", "--only", "alpha", "--resume") == 1
    assert "fingerprint.json" in capsys.readouterr().err
    assert sorted(os.listdir(units_folder(kept))) == before

    real = tmp_path / "elsewhere"
    real.mkdir()
    linked = tmp_path / "linked.npz"
    os.symlink(real, units_folder(linked))
    assert _score(files, linked, "-q", "--only", "alpha") == 1
    assert "symbolic link" in capsys.readouterr().err
    assert not os.listdir(real) and not linked.exists()


def test_cleanup_removes_only_the_files_headwidget_wrote(files, single, tmp_path, capsys) -> None:
    out = tmp_path / "c.npz"
    folder = units_folder(out)
    assert _score(files, out, "-q", "--only", "alpha", "--keep-units") == 0
    (folder / "notes.txt").write_text("mine")
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    os.symlink(target, folder / "t0000-l009.npz")  # a link named like a unit: not followed
    assert _score(files, out, "--only", "alpha", "--resume") == 0
    err = capsys.readouterr().err
    assert sorted(os.listdir(folder)) == ["notes.txt", "t0000-l009.npz"]
    assert target.read_text() == "keep me" and "kept" in err and "notes.txt" in err
    assert not list(folder.glob("*.json"))


def test_a_second_run_on_the_same_output_fails_at_once_naming_the_first(
    files, single, tmp_path, capsys
) -> None:
    """The units folder is taken with a lock file (host, pid): a second run on the same -o
    fails before scoring, naming the first; once the first is dead (SIGKILL), its lock is
    stale and --resume takes it over."""
    out = tmp_path / "busy.npz"
    folder = units_folder(out)
    child, argv = start_slow_run(files, out)
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("t*-l*.npz")) and time.monotonic() < deadline:
            assert child.poll() is None, "the first run ended too soon"
            time.sleep(0.02)
        began = time.perf_counter()
        assert main([*argv, "-q", "--resume"]) == 1
        assert time.perf_counter() - began < 10  # at once: nothing scored
        err = _one_error(capsys.readouterr().err)
        assert f"pid {child.pid}" in err and "in use" in err
        assert child.poll() is None  # the first run goes on
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    assert main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"pid {child.pid}" in err and "stale" in err
    _same(HeadScores.load(out), single)


def _edited_part(source: str, target: Path, change) -> str:
    """A copy of the part file ``source`` whose ``meta["shard"]`` ``change`` edited."""
    scores = HeadScores.load(source)
    change(scores.meta["shard"])
    return str(scores.save(target))


def test_merge_names_the_part_and_field_of_edited_shard_metadata(files, tmp_path, capsys) -> None:
    """Every part's meta["shard"] (index, count, units, fingerprint) is checked; each problem
    names the part and the field; a count beyond the units is refused at once (10^9: bounded
    time and memory, a short line)."""
    out = tmp_path / "s.npz"
    for i in range(2):
        assert _score(files, out, "--shard", f"{i}/2", "-q") == 0
    zero, one = (str(part_path(out, i, 2)) for i in range(2))
    capsys.readouterr()
    everything = [[t, layer] for t in range(3) for layer in range(N_LAYERS)]

    def case(change, *words: str, pair: bool = True) -> None:
        bad = _edited_part(zero, tmp_path / "bad.part-0-of-2.npz", change)
        parts = [bad, one] if pair else [bad]
        began = time.perf_counter()
        assert main(["merge", *parts, "-o", str(tmp_path / "m.npz")]) == 1
        seconds = time.perf_counter() - began
        err = capsys.readouterr().err
        line = _one_error(err)
        assert all(word in line for word in ("bad.part-0-of-2.npz", *words)), (words, err)
        assert len(err) < 600 and seconds < 2, (seconds, err[:300])
        assert not (tmp_path / "m.npz").exists()

    case(lambda s: s.update(units=[[99, 0]]), "meta['shard']['units']", "[99, 0]")
    case(lambda s: s.update(units="all"), "meta['shard']['units']")
    case(lambda s: s.update(units=[[0, 0], [0, 0]]), "meta['shard']['units']", "twice")
    case(lambda s: s.update(index="x"), "meta['shard']['index']")
    case(lambda s: s.pop("count"), "meta['shard']['count']")
    case(lambda s: s.update(fingerprint=5), "meta['shard']['fingerprint']")
    case(lambda s: s.update(units=[[1, -1]]), "meta['shard']['units']", "[1, -1]")
    # claiming every unit (the other part's cells would be NaN)
    case(lambda s: s.update(units=everything), "meta['shard']['units']", "shard 0 of 2")
    case(lambda s: s.update(count=10**7), "meta['shard']['count']", "at most 12")
    case(lambda s: s.update(count=10**9, index=10**9 - 1), "meta['shard']['count']")
    case(lambda s: s.update(count=3), "of 3", "of 2")  # parts of two shardings
    # alone, a part claiming 10^9 shards: refused as quickly, the absent list not built
    case(lambda s: s.update(count=10**9), "meta['shard']['count']", pair=False)
    # a genuine part alone: which units and shards are missing, each list shortened
    assert main(["merge", zero, "-o", str(tmp_path / "m.npz")]) == 1
    assert "shard(s) [1] of 2 are not among the parts" in capsys.readouterr().err


def test_shard_counts_beyond_the_units_are_refused_at_once(files, tmp_path, capsys) -> None:
    """``--shard 0/100000000`` once ran 100 s and took 8 GB to write an empty part."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from headwidget.sweep.units import ShardCountError

    model = AutoModelForCausalLM.from_pretrained(files / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(files / "model")
    tasks = load_tasks(files / "tasks.jsonl")
    began = time.perf_counter()
    with pytest.raises(ShardCountError, match="12 units.*at most 12 shards"):
        run_sweep(model, tokenizer, tasks, tmp_path / "x.npz", model_id="m", shard=(0, 10**8))
    assert time.perf_counter() - began < 2
    assert not units_folder(tmp_path / "x.npz").exists()
    assert _score(files, tmp_path / "x.npz", "-q", "--shard", "0/100000000") == 2
    assert "at most 12 shards" in capsys.readouterr().err


def test_outputs_devices_and_pages_are_checked_before_any_work(files, tmp_path, capsys) -> None:
    """An output that is a folder or cannot be written, a device this machine lacks, a page
    not named .html: one clear line, before the model is scored."""
    folder_out = tmp_path / "adir.npz"
    folder_out.mkdir()
    began = time.perf_counter()
    assert _score(files, folder_out, "-q") == 1
    assert "is a folder" in capsys.readouterr().err and time.perf_counter() - began < 5
    assert not units_folder(folder_out).exists()
    plain = tmp_path / "plain"
    plain.write_text("")
    assert _score(files, plain / "x.npz", "-q") == 1
    assert "plain" in capsys.readouterr().err
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK | os.X_OK, effective_ids=True):
        assert _score(files, Path("/sys/headwidget-test.npz"), "-q") == 1
        assert "cannot write" in capsys.readouterr().err
    argv = ["score", str(files / "model"), "--tasks", str(files / "tasks.jsonl")]
    for device in ("cuda:99", "nonsense"):
        assert main([*argv, "-o", str(tmp_path / "d.npz"), "--device", device, "-q"]) == 2
        err = capsys.readouterr().err
        assert f"--device {device}" in err and "Error" not in err, err
    assert main(["show", str(files / "single.npz"), "--html", str(tmp_path / "x.txt")]) == 2
    assert ".html" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.txt*"))
