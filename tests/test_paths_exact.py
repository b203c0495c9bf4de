"""trace_paths against an independent brute-force path patching, one example at a time.

The reference here shares no code with headwidget's engine: plain torch hooks on the model's own
modules, one full forward per example and edge, the sender's contribution from the output
projection's weights, the receiver's query/key/value columns written out per architecture. For
the query, and for keys and values where every head has its own (GPT-2, GPT-NeoX), it patches
the receiver's columns of the projection's output in one forward pass, the textbook way; where a
key/value group is shared (Llama and Gemma-2 here, grouped-query attention) it takes the
receiver's output from a forward with the group patched and splices it into a clean forward.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import Task, trace_paths
from headwidget.modeling.inputs import split_tokens

HEADS = [(0, 1), (1, 0), (1, 3), (2, 2)]

# family -> (layers, attention norm, out_proj, out norm, final norm, projections)
SPECS = {
    "llama": ("model.layers", "input_layernorm", "self_attn.o_proj", None, "model.norm", "qkv"),
    "gemma2": ("model.layers", "input_layernorm", "self_attn.o_proj", "post_attention_layernorm",
               "model.norm", "qkv"),
    "gpt2": ("transformer.h", "ln_1", "attn.c_proj", None, "transformer.ln_f", "attn.c_attn"),
    "gpt_neox": ("gpt_neox.layers", "input_layernorm", "attention.dense", None,
                 "gpt_neox.final_layer_norm", "attention.query_key_value"),
}  # fmt: skip


class Reference:
    """Brute-force path patching on one model (module doc)."""

    def __init__(self, family: str, model: torch.nn.Module) -> None:
        self.family, self.model = family, model
        layers, norm, out, out_norm, final, qkv = SPECS[family]
        self.layers = model.get_submodule(layers)
        self.norm = [layer.get_submodule(norm) for layer in self.layers]
        self.out = [layer.get_submodule(out) for layer in self.layers]
        self.out_norm = [out_norm and layer.get_submodule(out_norm) for layer in self.layers]
        self.final_norm = model.get_submodule(final)
        self.qkv = qkv
        config = model.config
        self.n_heads = config.num_attention_heads if family != "gpt2" else config.n_head
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_heads
        hidden = config.hidden_size if family != "gpt2" else config.n_embd
        self.d = getattr(config, "head_dim", None) or hidden // self.n_heads
        self.hidden = hidden

    def projection(self, layer: int, channel: str) -> tuple[torch.nn.Module, torch.Tensor]:
        """The module computing ``channel`` and, per head, its output columns [H, d]."""
        block = self.layers[layer]
        h, d, g = (
            torch.arange(self.n_heads)[:, None],
            torch.arange(self.d),
            self.n_heads // self.n_kv,
        )
        if self.qkv == "qkv":
            module = block.get_submodule(f"self_attn.{channel}_proj")
            return module, (h * self.d + d if channel == "q" else (h // g) * self.d + d)
        module = block.get_submodule(self.qkv)
        offset = "qkv".index(channel)
        if self.family == "gpt2":  # [q | k | v], each hidden wide
            return module, offset * self.hidden + h * self.d + d
        return module, h * 3 * self.d + offset * self.d + d  # neox: per head [q, k, v]

    def run(self, ids: torch.Tensor, edits: dict) -> dict:
        """One forward of ``ids`` ([1, T]) with ``edits``; returns what was recorded."""
        seen: dict = {"a": {}, "x": {}}
        handles = []
        for i, layer in enumerate(self.layers):

            def pre(module, args, kwargs, i=i):
                hidden = args[0] if args else kwargs["hidden_states"]
                seen["x"][i] = hidden.detach().clone()

            def out_pre(module, args, i=i):
                seen["a"][i] = args[0].clone()  # (kept in the graph: the splice's gradient)
                if ("splice", i) in edits:
                    head, value = edits["splice", i]
                    a = args[0].clone()
                    a[..., head * self.d : (head + 1) * self.d] = value
                    return (a,)
                return None

            handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(self.out[i].register_forward_pre_hook(out_pre))
        if "proj" in edits:
            module, columns, value = edits["proj"]

            def proj_hook(mod, args, output):
                output = output.clone()
                output[..., columns] = value
                return output

            handles.append(module.register_forward_hook(proj_hook))
        if "final" in edits:
            handles.append(self.final_norm.register_forward_pre_hook(
                lambda mod, args: (args[0] - edits["final"],)))  # fmt: skip
        try:
            seen["logits"] = self.model(input_ids=ids, use_cache=False).logits
        finally:
            for handle in handles:
                handle.remove()
        return seen

    def delta(self, a: torch.Tensor, sender: tuple[int, int], fill: torch.Tensor) -> torch.Tensor:
        """The sender's own contribution, from the output projection's weights."""
        layer, head = sender
        cut = slice(head * self.d, (head + 1) * self.d)
        weight = self.out[layer].weight
        w = weight[cut, :] if self.family == "gpt2" else weight[:, cut].T  # Conv1D: [in, out]
        change = (a[..., cut] - fill) @ w
        norm = self.out_norm[layer]
        if norm is None:
            return change
        o = self.out[layer](a)
        return norm(o) - norm(o - change)


def logprob(logits: torch.Tensor, prompt: list[int], answer: list[int]) -> torch.Tensor:
    rows = logits[0, len(prompt) - 1 : len(prompt) - 1 + len(answer)].double().log_softmax(-1)
    return rows[torch.arange(len(answer)), torch.tensor(answer)].sum()


def prepare(family, model, tokenizer, examples, heads, ablation):
    """The reference, each example's clean run and every chosen head's ablated value."""
    ref = Reference(family, model)
    runs = []
    with torch.no_grad():
        for prompt, answer in (split_tokens(tokenizer, p, a) for p, a in examples):
            ids = torch.tensor([prompt + answer[:-1]])
            runs.append((ids, prompt, answer, ref.run(ids, {})))
        means = {}
        for layer, head in heads:
            cut = slice(head * ref.d, (head + 1) * ref.d)
            stacked = torch.cat([seen["a"][layer][0, :, cut] for *_, seen in runs])
            zero = torch.zeros(ref.d, dtype=stacked.dtype)
            means[layer, head] = stacked.mean(0) if ablation == "mean" else zero
    return ref, runs, means


def patched_metric(ref, run, means, sender, receiver, channel, scale=1.0):
    """The metric of one example with ``receiver``'s ``channel`` input (None: the final norm's)
    read from the stream minus ``scale`` times the sender's contribution."""
    ids, prompt, answer, seen = run
    delta = scale * ref.delta(seen["a"][sender[0]], sender, means[sender])
    if receiver is None:
        return logprob(ref.run(ids, {"final": delta})["logits"], prompt, answer)
    layer, head = receiver
    module, columns = ref.projection(layer, channel)
    value = module(ref.norm[layer](seen["x"][layer] - delta))
    patched = ref.run(ids, {"proj": (module, columns[head], value[..., columns[head]])})
    if channel != "q" and ref.n_kv < ref.n_heads:  # a shared group: keep the receiver's output
        cut = slice(head * ref.d, (head + 1) * ref.d)
        value = patched["a"][layer][..., cut]
        patched = ref.run(ids, {("splice", layer): (head, value)})
    return logprob(patched["logits"], prompt, answer)


def reference_edges(heads):
    """trace_paths' edge order: by sender, then receiver and channel, then the logits."""
    chosen = sorted(heads)
    for sender in chosen:
        for receiver in chosen:
            if receiver[0] > sender[0]:
                yield from ((sender, receiver, c) for c in "qkv")
        yield sender, None, "logits"


def brute_force(family, model, tokenizer, examples, heads, ablation):
    """effect per (edge, example) in trace_paths' edge order."""
    ref, runs, means = prepare(family, model, tokenizer, examples, heads, ablation)
    with torch.no_grad():
        return np.asarray([
            [float(logprob(run[3]["logits"], run[1], run[2])
                   - patched_metric(ref, run, means, sender, receiver, channel)) for run in runs]
            for sender, receiver, channel in reference_edges(heads)
        ])  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


@pytest.mark.parametrize("ablation", ["mean", "zero"])
@pytest.mark.parametrize("family", list(SPECS))
def test_trace_paths_equals_brute_force(family, ablation, tokenizer):
    model = tiny_model(family, vocab_size=len(tokenizer), n_layers=3)
    task = Task("mixed", list(MIXED_EXAMPLES))
    paths = trace_paths(model, tokenizer, task, heads=HEADS, ablation=ablation, progress=False,
                        batch_size=2)  # fmt: skip
    expected = brute_force(family, model, tokenizer, MIXED_EXAMPLES, HEADS, ablation)
    got = paths.effects["mixed"]
    assert got.shape == expected.shape == (len(paths.edges), len(MIXED_EXAMPLES))
    assert np.abs(expected).max() > 1e-2  # the edges matter: the comparison means something
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(paths.effect, expected.mean(1), atol=1e-5, rtol=0)
