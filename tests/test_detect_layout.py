"""Layouts found by convention: each check that can fail does so with UnsupportedModelError,
naming what did not fit (exactness of what is accepted: tests/test_engine_exact.py)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model

from headwidget import Task
from headwidget.modeling.adapters import UnsupportedModelError, describe_model
from headwidget.scoring import score_heads

TASK = Task("mixed", list(MIXED_EXAMPLES))


@pytest.fixture
def phi(word_tok):
    return tiny_model("phi", vocab_size=len(word_tok), n_layers=2)


def unsupported(model) -> str:
    with pytest.raises(UnsupportedModelError) as info:
        describe_model(model)
    message = str(info.value)
    assert "head_layout=HeadLayout" in message and "detected when they follow" in message
    return message


def test_a_layout_is_detected_checked_and_remembered(phi):
    layout = describe_model(phi)
    assert (layout.out_proj, layout.n_heads, layout.head_dim) == ("self_attn.dense", 4, 8)
    assert layout.layers == list(phi.model.layers)
    assert describe_model(phi) is layout  # checked on the first call only


def test_the_checking_forward_pass_leaves_training_flags_alone(phi):
    phi.train()
    phi.model.layers[0].eval()
    before = {name: module.training for name, module in phi.named_modules()}
    describe_model(phi)
    assert {name: module.training for name, module in phi.named_modules()} == before


def test_an_unknown_step_after_the_last_layer_is_caught(phi, word_tok):
    def doubled(module, args, output):
        output.logits = output.logits * 2
        return output

    phi.register_forward_hook(doubled)
    assert "do not reproduce the model's logits" in unsupported(phi)
    with pytest.raises(UnsupportedModelError):
        score_heads(phi, word_tok, TASK, progress=False)


def test_a_config_whose_head_count_the_attention_disagrees_with(phi):
    phi.config.num_attention_heads = 8  # 8 x 4 is still the projection's width
    assert "has head_dim=8 but the config says 4" in unsupported(phi)


def test_a_projection_of_the_wrong_width(phi):
    phi.config.num_attention_heads = 3
    assert "takes 32 features, not heads x head size" in unsupported(phi)


def test_no_list_of_decoder_layers(phi):
    phi.config.num_hidden_layers = 5
    assert "found no ModuleList of its 5 decoder layers" in unsupported(phi)


def test_no_attention_output_projection(phi):
    for layer in phi.model.layers:
        layer.self_attn.proj_out = layer.self_attn.dense
        del layer.self_attn.dense
    assert "found no attention output projection" in unsupported(phi)


def test_no_single_final_norm(phi):
    phi.model.other_norm = torch.nn.LayerNorm(32)
    assert "found 2 norm modules after model.layers" in unsupported(phi)


def test_a_conv1d_projection_is_detected_and_scores_like_the_built_in_description(word_tok):
    gpt2 = tiny_model("gpt2", vocab_size=len(word_tok), n_layers=2)
    built_in = score_heads(gpt2, word_tok, TASK, progress=False)
    gpt2.config.model_type = "gpt2_renamed"  # no built-in description: detection takes over
    layout = describe_model(gpt2)
    assert (layout.name, layout.out_proj) == ("gpt2_renamed (detected)", "attn.c_proj")
    detected = score_heads(gpt2, word_tok, TASK, progress=False)
    assert (detected.values == built_in.values).all()
