"""The shipped demo model: loads offline, its report and the README tell the truth about it, and
its training is deterministic."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from headwidget import load_suite
from headwidget.demo import (
    DEMO_MODEL_FILES,
    demo_training_report,
    load_demo_model,
    word_level_tokenizer,
)
from headwidget.validation import evaluate_tasks

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "headwidget" / "data" / "demo_model"


def _training_script():
    spec = importlib.util.spec_from_file_location(
        "train_demo_model", ROOT / "scripts" / "train_demo_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


@pytest.fixture(scope="module")
def script():
    return _training_script()


def test_demo_model_loads_offline_as_described(demo, monkeypatch):
    model, tokenizer = demo
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads) == (6, 8)
    assert config.num_key_value_heads == 4  # grouped-query attention
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    total = sum((MODEL_DIR / name).stat().st_size for name in DEMO_MODEL_FILES)
    assert total < 5 * 2**20, f"the demo model's files take {total / 2**20:.1f} MiB"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    half, _ = load_demo_model(dtype=torch.float16)
    assert next(half.parameters()).dtype == torch.float16
    bf16, _ = load_demo_model(dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='fp8' is not a torch dtype"):
        load_demo_model(dtype="fp8")


def test_the_tokenizer_covers_every_suite_word(demo):
    _, tokenizer = demo
    for suite in ("operations", "cognitive"):
        for task in load_suite(suite):
            for example in task.examples:
                for text in (example.prompt, example.answer, example.distractor):
                    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                    assert tokenizer.unk_token_id not in ids, (task.name, text)


def test_report_describes_the_shipped_weights(script):
    report = demo_training_report()
    digest = hashlib.sha256((MODEL_DIR / "model.safetensors").read_bytes()).hexdigest()
    assert report["model_sha256"] == digest
    names = [t.name for t in load_suite("operations") + load_suite("cognitive")]
    assert list(report["tasks"]) == names


def test_heldout_accuracy_in_the_report_and_readme_is_measured_on_held_out_pairs(demo, script):
    model, tokenizer = demo
    report = demo_training_report()
    data = script.split_tasks(report["seed"])
    for td in data:
        train_sources = {source for source, _, _ in td.train}
        heldout_sources = [source for source, _, _ in td.heldout]
        assert not train_sources & set(heldout_sources), td.name
        assert heldout_sources == report["tasks"][td.name]["heldout_sources"]
    heldout = evaluate_tasks(model, tokenizer, script.heldout_tasks(data, seed=report["seed"]))
    for name, accuracy in heldout.items():
        assert accuracy == pytest.approx(report["tasks"][name]["heldout_accuracy"], abs=1e-4)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.markdown_table(report) in readme


def test_held_out_prompts_never_show_the_query_pair(script):
    data = script.split_tasks(0)
    for task, td in zip(script.heldout_tasks(data), data, strict=True):
        for example, (source, target, _) in zip(task.examples, td.heldout, strict=True):
            demonstrations = example.prompt.split(td.separator)[:-1]
            assert example.answer.strip() == target
            assert all(
                td.template.format(source=source, target=target) != d for d in demonstrations
            )


def test_training_is_deterministic(script):
    tasks = load_suite("operations") + load_suite("cognitive")
    tokenizer = word_level_tokenizer(tasks)
    data = script.split_tasks(0)
    first, loss_a = script.train_model(data, tokenizer, steps=2, log=lambda line: None)
    second, loss_b = script.train_model(data, tokenizer, steps=2, log=lambda line: None)
    assert loss_a == loss_b
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    other, _ = script.train_model(data, tokenizer, steps=2, seed=1, log=lambda line: None)
    assert not torch.equal(other.model.embed_tokens.weight, first.model.embed_tokens.weight)
