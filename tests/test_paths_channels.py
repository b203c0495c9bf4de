"""Where path patching finds each built-in architecture's query, key and value (the registry's
``Architecture.inputs``, the ``qkv=`` hook site): checked against the model's own attention.

For every built-in family: zeroing one query head's columns through the ``qkv=`` site changes
that head's attention weights and no other's; zeroing one key/value head's key changes the
weights of exactly the query heads of its group; zeroing its value changes exactly their
outputs. So the columns of fused projections (GPT-2, Phi-3, GPT-NeoX, BLOOM, Falcon) and the
key/value groups (grouped- and multi-query attention) are where the registry says (OLMo-2
normalizes its queries and keys over all heads together, so there a query or key slice reaches
every head). Then
trace_paths runs on each, exact and by attribution, and models it cannot reach say so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_architectures import BUILT_IN
from tiny_models import DETECTED_FAMILIES, MIXED_EXAMPLES, tiny_model

from headwidget import Task, trace_paths
from headwidget.methods.agreement import spearman
from headwidget.modeling.adapters import resolve_layout
from headwidget.modeling.channels import (
    ChannelLayout,
    UnreachableChannelsError,
    resolve_channels,
)
from headwidget.modeling.hooks import hooks


class Zero:
    """``qkv=``: one slice of one channel set to zero."""

    form = "call"

    def __init__(self, channel: str, index: int) -> None:
        self.channels, self.index = (channel,), index

    def __call__(self, layer, call):
        out = call.output.clone()
        out[..., self.index, :] = 0
        return out


def forward(model, layout, ids, strategy=None, channels=None):
    """Layer 1's attention weights [B, H, T, T] and out_proj input [B, T, H, d]."""
    grabbed = {}

    def grab(layer, x):
        grabbed["heads"] = x.clone()

    with torch.no_grad(), hooks(layout, heads=grab, qkv=strategy, channels=channels, layers=[1]):
        out = model(input_ids=ids, output_attentions=True, use_cache=False)
    return out.attentions[1], grabbed["heads"]


@pytest.mark.parametrize("family", BUILT_IN)
def test_each_slice_of_each_channel_is_where_the_registry_says(family):
    model = tiny_model(family, vocab_size=64, attn_implementation="eager")
    layout = resolve_layout(model)
    channels = resolve_channels(model, layout)
    n_heads, n_kv = layout.n_heads, channels.n_slices["k"]
    group = n_heads // n_kv
    ids = torch.arange(5, 14)[None]
    clean_weights, clean_heads = forward(model, layout, ids)
    for channel, n in channels.n_slices.items():
        for index in range(n):
            weights, heads = forward(model, layout, ids, Zero(channel, index), channels)
            changed_weights = [
                not torch.allclose(weights[0, h], clean_weights[0, h], atol=1e-6)
                for h in range(n_heads)
            ]
            changed_heads = [
                not torch.allclose(heads[0, :, h], clean_heads[0, :, h], atol=1e-6)
                for h in range(n_heads)
            ]
            owners = [index] if channel == "q" else range(index * group, (index + 1) * group)
            expected = [h in owners for h in range(n_heads)]
            if family == "olmo2" and channel != "v":  # its q/k norms span every head:
                expected = [True] * n_heads  # a slice's zeros reach them all
            if channel == "v":
                assert not any(changed_weights), (channel, index)
                assert changed_heads == expected, (channel, index, changed_heads)
                assert (heads[0, :, owners] == 0).all()
            else:
                assert changed_weights == expected, (channel, index, changed_weights)


@pytest.mark.parametrize("family", BUILT_IN)
def test_trace_paths_runs_on_every_built_in_architecture(family, word_tok):
    model = tiny_model(family, vocab_size=len(word_tok), n_layers=3)
    task = Task("mixed", list(MIXED_EXAMPLES))
    heads = [(0, 1), (1, 2), (2, 0)]
    exact = trace_paths(model, word_tok, task, heads=heads, progress=False)
    rough = trace_paths(model, word_tok, task, heads=heads, method="attribution", progress=False)
    assert len(exact.edges) == 3 * 3 + 3 and np.isfinite(exact.effect).all()
    assert np.abs(exact.effect).max() > 1e-3
    assert spearman(rough.effect, exact.effect) > 0.5, (rough.effect, exact.effect)


@pytest.mark.parametrize("family", DETECTED_FAMILIES[:3])
def test_a_model_the_registry_does_not_describe_gets_a_clear_error(family, word_tok):
    model = tiny_model(family, vocab_size=len(word_tok))
    with pytest.raises(UnreachableChannelsError, match=model.config.model_type):
        trace_paths(model, word_tok, Task("t", [("the cat is", " red")]), heads=[(0, 0), (1, 0)])


def test_a_hand_written_layout_that_does_not_fit_is_refused(tiny_llama):
    layout = resolve_layout(tiny_llama)
    wrong = ChannelLayout("self_attn.q_proj", "self_attn.q_proj", "self_attn.v_proj")
    with pytest.raises(UnreachableChannelsError, match="widths"):
        resolve_channels(tiny_llama, layout, wrong)
    missing = ChannelLayout("self_attn.q", "self_attn.k_proj", "self_attn.v_proj")
    with pytest.raises(UnreachableChannelsError, match="no q projection"):
        resolve_channels(tiny_llama, layout, missing)


def test_a_wrong_norm_is_found_before_it_patches_the_wrong_thing(tiny_llama, word_tok):
    """The projections must read the named norm's output: checked on the first rerun."""
    wrong = ChannelLayout(  # no norm: as if the projections read the residual stream
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", name="llama, no norm"
    )
    with pytest.raises(RuntimeError, match="does not read the attention norm"):
        trace_paths(tiny_llama, word_tok, Task("t", [("the cat is", " red")]),
                    heads=[(0, 0), (1, 0)], channel_layout=wrong, progress=False)  # fmt: skip
