"""method="attribution": exact where the path from a head to the metric is linear, refinement
bookkeeping, streaming order, nothing left on the model, bf16, and bad options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model
from torch import nn

from headwidget import HeadLayout, Task
from headwidget.methods.agreement import spearman
from headwidget.methods.refinement import pick_refined
from headwidget.modeling.inputs import encode_task
from headwidget.scoring import score_heads

EXAMPLES = [
    ("the cat is", " red", " blue"),
    ("one two three four five six", " seven eight", " ten"),
    ("paris is the capital of", " france", " italy"),
    ("big dog", " up down left", " up right"),
    ("tokyo is in", " japan", " germany"),
]
TASK = Task("mixed", EXAMPLES)


class _Attention(nn.Module):
    """Causal multi-head attention, then the output projection, added to the residual."""

    def __init__(self, width: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.o_proj = nn.Linear(width, width)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        q, k, v = (
            t.view(batch, length, self.n_heads, -1).transpose(1, 2)
            for t in self.qkv(hidden).split(width, dim=-1)
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        allowed = causal & attention_mask.bool()[:, None, None, :]
        out = scores.masked_fill(~allowed, -1e9).softmax(-1) @ v
        return hidden + self.o_proj(out.transpose(1, 2).reshape(batch, length, width))


class AttentionOnly(nn.Module):
    """One attention layer, no norm, no MLP, linear unembedding: with ``logit_diff`` the metric
    is linear in every head's output, and no ablated head feeds any attention pattern (there is
    no later layer), so first-order attribution is exact."""

    def __init__(self, vocab: int, width: int = 16, n_heads: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(32, width)
        self.layers = nn.ModuleList([_Attention(width, n_heads)])
        self.unembed = nn.Linear(width, vocab, bias=False)
        with torch.no_grad():
            for param in self.parameters():
                param.normal_(0.0, 0.5)

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        hidden = self.embed(input_ids) + self.positions(torch.arange(input_ids.shape[1]))
        for layer in self.layers:
            hidden = layer(hidden, attention_mask)
        return self.unembed(hidden)


def _linear_model(word_tok):
    model = AttentionOnly(len(word_tok)).eval()
    layout = HeadLayout(layers=model.layers, out_proj="o_proj", n_heads=4, final=model.unembed)
    return model, layout


@pytest.mark.parametrize("ablation", ["mean", "zero"])
@pytest.mark.parametrize("steps", [1, 3])
def test_attribution_equals_ablation_where_the_path_is_linear(word_tok, ablation, steps):
    model, layout = _linear_model(word_tok)
    common = dict(metric="logit_diff", ablation=ablation, head_layout=layout, progress=False)
    exact = score_heads(model, word_tok, TASK, **common)
    approx = score_heads(
        model, word_tok, TASK, method="attribution", steps=steps, exact_layers=0, **common
    )
    assert approx.method == "attribution" and exact.method == "ablation"
    assert approx.exact is not None and not approx.exact.any()  # every cell approximate
    np.testing.assert_allclose(approx.values, exact.values, atol=1e-4, rtol=0)
    assert np.abs(exact.values).max() > 0.1  # heads matter: the test can fail
    assert approx.baseline["mixed"] == pytest.approx(exact.baseline["mixed"], abs=1e-5)


@pytest.mark.parametrize("metric", ["logprob", "prob"])
@pytest.mark.parametrize("ablation", ["mean", "zero"])
def test_output_correction_is_exact_where_the_logits_are_linear(word_tok, metric, ablation):
    # One attention layer and a linear unembedding: every logit moves linearly when a head is
    # ablated, so estimating all of them and taking the exact log-softmax is exact ablation,
    # while first order alone is not (the log-softmax curves).
    model, layout = _linear_model(word_tok)
    common = dict(metric=metric, ablation=ablation, head_layout=layout, progress=False)
    exact = score_heads(model, word_tok, TASK, **common)
    every = len(word_tok)  # more than vocab - 1: clamped to every other logit
    corrected = score_heads(
        model, word_tok, TASK, method="attribution", competitors=every, exact_layers=0, **common
    )
    plain = score_heads(
        model, word_tok, TASK, method="attribution", competitors=0, exact_layers=0, **common
    )
    np.testing.assert_allclose(corrected.values, exact.values, atol=1e-4, rtol=1e-4)
    scale = np.abs(exact.values).max()
    assert np.abs(plain.values - exact.values).max() > 0.05 * scale  # the correction matters
    assert corrected.meta["competitors"] == every and plain.meta["competitors"] == 0


def test_one_competitor_brings_first_order_closer(tiny_llama, word_tok):
    exact = score_heads(tiny_llama, word_tok, TASK, progress=False)
    common = dict(method="attribution", exact_layers=0, progress=False)
    plain = score_heads(tiny_llama, word_tok, TASK, competitors=0, **common)
    one = score_heads(tiny_llama, word_tok, TASK, competitors=1, **common)
    error = [np.abs(s.values - exact.values).mean() for s in (plain, one)]
    assert error[1] < error[0]


def test_the_sink_screen_measures_each_heads_change_at_the_first_position(tiny_llama, word_tok):
    # brute force: each head ablated alone (mean ablation) on the task's most common first
    # token, one forward per head; the screen measures every head at once in one forward
    from headwidget.methods.attribution import AttributionMethod
    from headwidget.methods.base import ScoringContext
    from headwidget.methods.sink_screen import first_position_screen
    from headwidget.modeling.adapters import resolve_layout
    from headwidget.modeling.inputs import encode_task, make_batches, pad_id

    layout = resolve_layout(tiny_llama, None)
    context = ScoringContext(
        tiny_llama, layout, "logprob", "mean", torch.device("cpu"), None,
        pad_id(word_tok, tiny_llama), ["mixed"],
    )  # fmt: skip
    items = encode_task(TASK, word_tok, "logprob", 512)
    _, batches = make_batches(items, "logprob", context.pad_id, layout.n_heads, context.device, 8)
    means = AttributionMethod(context)._means(batches)
    change = first_position_screen(context, batches, means)
    firsts = torch.cat([b.input_ids[:, 0] for b in batches])
    values, counts = torch.unique(firsts, return_counts=True)
    token = int(values[int(torch.argmax(counts))])
    ids = torch.tensor([[token]])

    def last_hidden(layer=None, head=None):
        seen = []
        handles = [
            layout.layers[-1].register_forward_hook(
                lambda module, args, out: seen.append(out[0] if isinstance(out, tuple) else out)
            )
        ]
        if layer is not None:

            def patch(module, args):
                x = args[0].clone()
                view = x.view(*x.shape[:-1], layout.n_heads, layout.head_dim)
                view[..., head, :] = means[layer].to(x.dtype)[head]
                return (x, *args[1:])

            handles.append(layout.out_projs[layer].register_forward_pre_hook(patch))
        try:
            with torch.no_grad():
                tiny_llama(input_ids=ids, use_cache=False)
        finally:
            for handle in handles:
                handle.remove()
        return seen[0].reshape(-1)  # the last layer's output at the one position

    clean = last_hidden()
    brute = np.array([
        [float((last_hidden(i, h) - clean).norm() / clean.norm()) for h in range(layout.n_heads)]
        for i in range(layout.n_layers)
    ])  # fmt: skip
    assert np.abs(brute).max() > 1e-3  # heads matter: the test can fail
    np.testing.assert_allclose(change, brute, rtol=1e-3, atol=1e-5)


def test_numpy_integers_are_whole_numbers(tiny_llama, word_tok):
    scores = score_heads(
        tiny_llama, word_tok, TASK, method="attribution", exact_layers=np.int64(0),
        refine=np.int64(2), refine_random=np.int32(1), progress=False,
    )  # fmt: skip
    assert scores.meta["refine"] == 2 and type(scores.meta["refine"]) is int
    assert scores.exact.sum() == 3


def test_exact_layers_scores_the_first_layers_exactly(tiny_llama, word_tok):
    exact = score_heads(tiny_llama, word_tok, TASK, progress=False)
    scores = score_heads(tiny_llama, word_tok, TASK, method="attribution", progress=False)
    assert scores.meta["exact_layers"] == 1  # the default
    mask = scores.exact[0]
    assert mask[0].all() and not mask[1:].any()
    np.testing.assert_allclose(scores.values[0, 0], exact.values[0, 0], atol=1e-5)
    every = score_heads(
        tiny_llama, word_tok, TASK, method="attribution", exact_layers=99, progress=False
    )
    assert every.exact is None  # every cell exact
    assert every.meta["exact_layers"] == scores.n_layers
    np.testing.assert_allclose(every.values, exact.values, atol=1e-5)


def test_attribution_is_not_exact_where_the_path_is_not(tiny_llama, word_tok):
    exact = score_heads(tiny_llama, word_tok, TASK, progress=False)
    approx = score_heads(
        tiny_llama, word_tok, TASK, method="attribution", exact_layers=0, progress=False
    )
    assert np.abs(approx.values - exact.values).max() > 1e-3
    assert spearman(approx.values.ravel(), exact.values.ravel()) > 0.5


def test_refine_bookkeeping_and_streaming(tiny_llama, word_tok):
    task2 = Task("words", list(MIXED_EXAMPLES))
    tasks = [TASK, task2]
    exact = score_heads(tiny_llama, word_tok, tasks, progress=False)
    plain = score_heads(
        tiny_llama, word_tok, tasks, method="attribution", exact_layers=0, progress=False
    )
    blocks, layers = [], []
    scores = score_heads(
        tiny_llama,
        word_tok,
        tasks,
        method="attribution",
        exact_layers=0,
        screen=1,
        refine=2,
        refine_random=2,
        seed=3,
        progress=False,
        on_block=lambda *block: blocks.append(block),
        on_layer=lambda *row: layers.append(row),
    )
    assert scores.method == "attribution"
    mask = scores.exact
    assert mask is not None and mask.shape == scores.shape
    assert mask.reshape(2, -1).sum(1).tolist() == [5, 5]  # 1 screened + 2 top + 2 random
    np.testing.assert_allclose(scores.values[mask], exact.values[mask], atol=1e-5)
    np.testing.assert_array_equal(scores.values[~mask], plain.values[~mask])
    for t, name in enumerate(scores.tasks):
        cells = mask[t].ravel()
        # the refined heads are the two attribution ranks highest (signed, as top_heads ranks)
        # apart from the screened one
        order = np.argsort(-plain.values[t].ravel(), kind="mergesort")
        assert cells[order[:2]].all() or (cells[order[:3]].sum() >= 2 and cells[order[2]])
        record = scores.meta["agreement"][name]
        assert set(record) == {"spearman", "exact_cells", "random_beat_kth"}
        assert record["exact_cells"] == 5 and 0 <= record["random_beat_kth"] <= 1
        rho = spearman(plain.values[t].ravel()[cells], exact.values[t].ravel()[cells])
        assert record["spearman"] == pytest.approx(rho)
    assert scores.meta["refine"] == 2 and scores.meta["screen"] == 1 and scores.meta["seed"] == 3
    # per task: every layer approximate first, then the exact blocks
    for name in scores.tasks:
        flags = [b[4] for b in blocks if b[0] == name]
        n_layers = scores.n_layers
        assert flags[:n_layers] == [False] * n_layers and all(flags[n_layers:])
        assert sum(len(b[2]) for b in blocks if b[0] == name and b[4]) == 5
    assert [(row[0], row[1]) for row in layers] == [
        (name, layer) for name in scores.tasks for layer in range(scores.n_layers)
    ]
    # seeded: the same call picks the same heads
    again = score_heads(
        tiny_llama, word_tok, tasks, method="attribution", exact_layers=0, screen=1, refine=2,
        refine_random=2, seed=3, progress=False,
    )  # fmt: skip
    np.testing.assert_array_equal(again.exact, mask)


def test_refinement_picks_each_head_once_and_nan_last():
    approx = np.array([[0.5, np.nan], [0.1, -0.2]])
    bound = np.array([[0.0, 9.0], [1.0, 2.0]])
    # more heads asked for than there are: every head not already exact, once, NaN last
    assert pick_refined(approx, bound, np.array([0]), k=5, k_sensitive=2).tolist() == [2, 3, 1]
    assert pick_refined(approx, bound, np.array([0]), k=2, k_sensitive=1).tolist() == [2, 1]
    assert pick_refined(approx, None, np.array([], np.int64), k=2, k_sensitive=1).tolist() == [0, 2]


def _bound_by_hand(model, tokenizer, task):
    """Per head, |a| |dlogprob/da| summed over positions and averaged over examples (zero
    ablation: the activation is the change), one unpadded example at a time with own hooks."""
    layers = model.model.layers
    n_heads = model.config.num_attention_heads
    total = torch.zeros(len(layers), n_heads, dtype=torch.float64)
    items = encode_task(task, tokenizer, "logprob", None)
    inputs = []

    def keep(module, args):
        inputs.append(args[0].detach().requires_grad_(True))
        return (inputs[-1], *args[1:])

    for item in items:
        inputs.clear()
        handles = [layer.self_attn.o_proj.register_forward_pre_hook(keep) for layer in layers]
        try:
            ids = torch.tensor([item.prompt + item.answer[:-1]])
            logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)
        finally:
            for handle in handles:
                handle.remove()
        start = len(item.prompt) - 1
        metric = sum(logprobs[start + j, token] for j, token in enumerate(item.answer))
        for i, (a, g) in enumerate(zip(inputs, torch.autograd.grad(metric, inputs), strict=True)):
            a, g = (x.detach()[0].reshape(x.shape[1], n_heads, -1) for x in (a, g))
            total[i] += (a.norm(dim=-1) * g.norm(dim=-1)).sum(0).double()
    return (total / len(items)).numpy()


def test_refine_sensitive_adds_the_heads_with_the_largest_first_order_bound(tiny_llama, word_tok):
    options = {
        "method": "attribution", "ablation": "zero", "competitors": 0, "exact_layers": 0,
        "progress": False,
    }  # fmt: skip
    plain = score_heads(tiny_llama, word_tok, TASK, **options).values[0].ravel()
    bound = _bound_by_hand(tiny_llama, word_tok, TASK).ravel()
    # Cauchy-Schwarz, position by position: no head's first-order effect exceeds its bound
    assert (np.abs(plain) <= bound + 1e-6).all()
    signed = np.argsort(-plain, kind="mergesort").tolist()
    by_bound = [i for i in np.argsort(-bound, kind="mergesort").tolist() if i != signed[0]]
    assert not set(by_bound[:2]) <= set(signed[:3])  # one the signed ranking would not refine
    scores = score_heads(
        tiny_llama, word_tok, TASK, refine=3, refine_sensitive=2, refine_random=0, **options
    )
    assert set(np.flatnonzero(scores.exact[0].ravel())) == {signed[0], *by_bound[:2]}
    assert scores.meta["refine_sensitive"] == 2
    # the default: a tenth of the refined heads by the bound
    default = score_heads(tiny_llama, word_tok, TASK, refine=5, **options)
    assert default.meta["refine_sensitive"] == 0 and default.exact.sum() == 5 + 2
    assert (
        score_heads(tiny_llama, word_tok, TASK, refine=10, **options).meta["refine_sensitive"] == 1
    )


def _hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_nothing_is_left_on_the_model(word_tok):
    model = tiny_model("llama", vocab_size=len(word_tok)).train()
    frozen = next(iter(model.parameters()))
    frozen.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    before = _hooks(model)
    weights = [p.detach().clone() for p in model.parameters()]
    score_heads(model, word_tok, TASK, method="attribution", refine=3, progress=False)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == before and model.training
    assert all(torch.equal(w, p) for w, p in zip(weights, model.parameters(), strict=True))


def test_bfloat16_accumulates_in_float32(word_tok):
    model = tiny_model("llama", vocab_size=len(word_tok))
    reference = score_heads(model, word_tok, TASK, method="attribution", screen=0, progress=False)
    half = score_heads(
        model.to(torch.bfloat16), word_tok, TASK, method="attribution", screen=0, progress=False
    )
    assert half.values.dtype == np.float32 and np.isfinite(half.values).all()
    assert half.meta["dtype"] == "bfloat16"
    scale = np.abs(reference.values).max()
    assert np.abs(half.values - reference.values).max() < 0.1 * scale
    assert spearman(half.values.ravel(), reference.values.ravel()) > 0.9


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"steps": 0}, ValueError, "steps must be"),
        ({"refine": -1}, ValueError, "refine must be"),
        ({"competitors": -1}, ValueError, "competitors must be"),
        ({"exact_layers": "all"}, ValueError, "exact_layers must be"),
        ({"refine_random": 1.5}, ValueError, "refine_random must be"),
        ({"refine": 2, "refine_sensitive": 3}, ValueError, "refine_sensitive must be a whole"),
        ({"screen": "all"}, ValueError, "screen must be"),
        ({"heads": {0: [1]}}, TypeError, "does not take \\['heads'\\]"),
        ({"method": "magic"}, ValueError, "unknown method 'magic'"),
        ({"method": "ablation", "heads": {5: [0]}}, ValueError, "out of range"),
        ({"method": "ablation", "heads": [0, 1]}, ValueError, "heads must map layer"),
    ],
)
def test_bad_options_say_what_is_wrong(tiny_llama, word_tok, options, error, message):
    options = {"method": "attribution", **options}
    with pytest.raises(error, match=message):
        score_heads(tiny_llama, word_tok, TASK, progress=False, **options)
