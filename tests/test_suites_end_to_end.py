"""The built-in suites and user data run through score_heads on a tiny offline model.

The model is a random-weight Llama (2 layers, 4 heads, hidden 32) and the tokenizer a word-level
vocabulary built from the tasks' own words, so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from tiny_models import suite_tokenizer  # noqa: E402

from headwidget import (
    load_tasks,  # noqa: E402
    score_heads,  # noqa: E402
)
from headwidget.tasks.suites import load_suite  # noqa: E402

N_LAYERS, N_HEADS = 2, 4


def tiny_llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        num_key_value_heads=N_HEADS,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("suite", ["cognitive", "operations"])
@pytest.mark.parametrize("metric", ["logprob", "logit_diff"])
def test_suite_scores_end_to_end(suite, metric):
    tasks = load_suite(suite, n_shots=2, max_examples=2)
    tokenizer = suite_tokenizer(tasks)
    for task in tasks:  # every answer and distractor is a known word, not <unk>
        for example in task.examples:
            for text in (example.answer, example.distractor):
                assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"]
    model = tiny_llama(len(tokenizer))
    seen_layers = []
    scores = score_heads(
        model,
        tokenizer,
        tasks,
        metric=metric,
        progress=False,
        on_layer=lambda task, layer, row: seen_layers.append((task, layer)),
    )
    assert scores.shape == (len(tasks), N_LAYERS, N_HEADS)
    assert scores.tasks == [task.name for task in tasks]
    assert scores.categories == {task.name: task.category for task in tasks}
    assert scores.descriptions == {task.name: task.description for task in tasks}
    assert scores.meta["examples"] == {task.name: 2 for task in tasks}
    assert np.isfinite(scores.values).all() and np.any(scores.values != 0)
    assert len(seen_layers) == len(tasks) * N_LAYERS


def test_user_data_scores_end_to_end(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "task,category,prompt,answer,distractor\n"
        "capitals,Knowledge,France -> Paris Japan ->, Tokyo, Kyoto\n"
        "capitals,Knowledge,Japan -> Tokyo Italy ->, Rome, Milan\n"
        "copy,Algorithmic,cat -> cat dog ->, dog, cat\n",
        encoding="utf-8",
    )
    tasks = load_tasks(path)
    tokenizer = suite_tokenizer(tasks)
    scores = score_heads(
        tiny_llama(len(tokenizer)), tokenizer, tasks, metric="logit_diff", progress=False
    )
    assert scores.tasks == ["capitals", "copy"]
    assert scores.categories == {"capitals": "Knowledge", "copy": "Algorithmic"}
    assert np.isfinite(scores.values).all()
