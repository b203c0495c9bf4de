"""``headwidget paths``, its shards through ``headwidget merge``, and ``show --paths``, on a tiny
saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import HeadPaths, HeadScores, load_tasks, trace_paths
from headwidget.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("paths")
    tok = word_tokenizer()
    tiny_model("llama", vocab_size=len(tok), n_layers=3).save_pretrained(base / "model")
    tok.save_pretrained(base / "model")
    with open(base / "tasks.jsonl", "w") as fh:
        for name, examples in (("mixed", MIXED_EXAMPLES), ("short", MIXED_EXAMPLES[::2])):
            for prompt, answer in examples:
                fh.write(json.dumps({"task": name, "prompt": prompt, "answer": answer}) + "\n")
    assert main(["score", str(base / "model"), "--tasks", str(base / "tasks.jsonl"), "-o",
                 str(base / "scores.npz"), "--device", "cpu", "-q"]) == 0  # fmt: skip
    return base


def paths_argv(folder, out, *extra):
    return ["paths", str(folder / "model"), "--tasks", str(folder / "tasks.jsonl"), "-o",
            str(out), "--device", "cpu", "-q", *extra]  # fmt: skip


def test_paths_equals_trace_paths_and_show_prints_the_edges(folder, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "paths.npz"
    assert main(paths_argv(folder, out, "--scores", str(folder / "scores.npz"), "--top", "3")) == 0
    model = AutoModelForCausalLM.from_pretrained(folder / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    scores = HeadScores.load(folder / "scores.npz")
    direct = trace_paths(model, tokenizer, load_tasks(folder / "tasks.jsonl"), scores=scores,
                         top=3, progress=False)  # fmt: skip
    saved = HeadPaths.load(out)
    np.testing.assert_array_equal(saved.edges, direct.edges)
    np.testing.assert_allclose(saved.effect, direct.effect, atol=1e-6)
    assert saved.meta["model"] == str(folder / "model")
    assert saved.meta["heads_from"] == "scores top 3"
    capsys.readouterr()
    assert main(["show", str(folder / "scores.npz"), "--paths", str(out), "--edges", "2"]) == 0
    printed = capsys.readouterr().out
    best = saved.top_edges("mixed", 1)[0]
    assert f"    1. {best}" in printed and "paths (" in printed
    section = printed.split("\npaths (")[1]
    assert section.count("\n    2. ") == 2 and "\n    3. " not in section
    # --html / --png draw the arrows: the page carries the edges, the figure differs with them
    page, png, plain = tmp_path / "p.html", tmp_path / "p.png", tmp_path / "plain.png"
    argv = ["show", str(folder / "scores.npz"), "--paths", str(out), "--edges", "2"]
    assert main([*argv, "--html", str(page), "--png", str(png)]) == 0
    text = page.read_text(encoding="utf-8")
    assert 'id="headwidget-path_data"' in text and '"path_edges": 2' in text
    assert main(["show", str(folder / "scores.npz"), "--png", str(plain)]) == 0
    assert png.read_bytes() != plain.read_bytes()


def test_shards_merge_into_the_whole(folder, tmp_path, capsys):
    whole = tmp_path / "p.npz"
    heads = ["--heads", "0.1", "L1H0", "2:3"]
    assert main(paths_argv(folder, whole, *heads)) == 0
    for index in range(2):
        assert main(paths_argv(folder, whole, *heads, "--shard", f"{index}/2")) == 0
    parts = [str(tmp_path / f"p.part-{i}-of-2.npz") for i in (1, 0)]  # any order
    merged = tmp_path / "merged.npz"
    assert main(["merge", *parts, "-o", str(merged)]) == 0
    one, joined = HeadPaths.load(whole), HeadPaths.load(merged)
    assert joined.tasks == one.tasks and one.heads["short"].tolist() == [[0, 1], [1, 0], [2, 3]]
    np.testing.assert_array_equal(joined.edges, one.edges)
    np.testing.assert_allclose(joined.effect, one.effect, atol=1e-6)
    capsys.readouterr()  # score files still go to the score merge, which says what is wrong
    assert main(["merge", str(folder / "scores.npz"), "-o", str(tmp_path / "s.npz")]) == 1
    assert "is not a part file (no meta['shard'])" in capsys.readouterr().err
    assert main(["merge", parts[1], "-o", str(tmp_path / "half.npz")]) == 1
    assert "shard 1 of 2 is missing" in capsys.readouterr().err
    assert main(["merge", str(whole), "-o", str(tmp_path / "w.npz")]) == 1
    assert "not a part file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --scores"),
        (["--heads", "0.1", "--scores", "x.npz"], "not both"),
        (["--heads", "0.1", "--refine", "3"], "--method attribution"),
        (["--heads", "zero"], "LAYER.HEAD"),
        (["--heads", "0.1", "--shard", "5/9"], "only 2 tasks"),
    ],
)
def test_usage_errors_exit_2_before_loading_the_model(folder, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) if message == "LAYER.HEAD" else _nothing():
        assert main(paths_argv(folder, tmp_path / "p.npz", *extra)) == 2
    assert message in capsys.readouterr().err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
