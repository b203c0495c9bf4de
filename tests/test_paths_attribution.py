"""Edge attribution (trace_paths(method="attribution")): the first-order term of the exact path
effect, checked against a finite difference of the brute-force reference of
tests/test_paths_exact.py in float64; refinement; the option checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_paths_exact import HEADS, patched_metric, prepare, reference_edges
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import Task, trace_paths
from headwidget.methods.agreement import spearman

EXAMPLES = list(MIXED_EXAMPLES[:3])


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_attribution_is_the_derivative_of_the_exact_effect(family, tokenizer):
    """estimate = -d/dt metric(receiver's input from x - t * delta_s) at t = 0, every edge
    (the reference's derivative by autograd: Llama's norms compute in float32 even in a
    float64 model, too coarse for a finite difference)."""
    model = tiny_model(family, vocab_size=len(tokenizer), n_layers=3).double()
    task = Task("mixed", EXAMPLES)
    paths = trace_paths(model, tokenizer, task, heads=HEADS, method="attribution",
                        progress=False)  # fmt: skip
    ref, runs, means = prepare(family, model, tokenizer, EXAMPLES, HEADS, "mean")

    def slope(run, sender, receiver, channel):  # -d metric / dt at t = 0, by autograd
        t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        metric = patched_metric(ref, run, means, sender, receiver, channel, t)
        return -float(torch.autograd.grad(metric, t)[0])

    expected = np.asarray([[slope(run, *edge) for run in runs] for edge in reference_edges(HEADS)])
    assert np.abs(expected).max() > 1e-2
    np.testing.assert_allclose(paths.effects["mixed"], expected, atol=1e-6, rtol=0)
    assert paths.method == "attribution" and paths.exact is not None and not paths.exact.any()


def test_refine_computes_the_strongest_estimates_exactly(tokenizer):
    model = tiny_model("llama", vocab_size=len(tokenizer), n_layers=3)
    task = Task("mixed", list(MIXED_EXAMPLES))
    exact = trace_paths(model, tokenizer, task, heads=HEADS, progress=False)
    rough = trace_paths(model, tokenizer, task, heads=HEADS, method="attribution",
                        progress=False)  # fmt: skip
    refined = trace_paths(model, tokenizer, task, heads=HEADS, method="attribution", refine=4,
                          progress=False)  # fmt: skip
    assert refined.exact is not None and refined.exact.sum() == 4 + 2  # K and K // 2 sampled
    top = np.argsort(-np.abs(rough.effect), kind="stable")[:4]
    assert refined.exact[top].all()
    np.testing.assert_allclose(refined.effect[refined.exact], exact.effect[refined.exact],
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(refined.effect[~refined.exact], rough.effect[~refined.exact])
    record = refined.meta["agreement"]["mixed"]
    assert record["exact_cells"] == 6 and -1 <= record["spearman"] <= 1
    print(f"\ntiny llama: Spearman(attribution, exact) over {len(exact.effect)} edges ="
          f" {spearman(rough.effect, exact.effect):.2f}")  # fmt: skip
    assert spearman(rough.effect, exact.effect) > 0.6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "attribution", "metric": "accuracy"}, "differentiable"),
        ({"refine": 3}, "method='attribution' only"),
        ({"via": ("q", "x")}, "via must be"),
        ({"via": ()}, "via must be"),
        ({"method": "gradient"}, "unknown method"),
        ({"ablation": "resample"}, "unknown ablation"),
        ({"heads": [(0, 9)]}, "outside the model"),
        ({"heads": [(0, 1), (0, 1)]}, "repeat"),
        ({"heads": None}, "give heads"),
    ],
)
def test_bad_options_fail_before_any_forward_pass(options, message, tokenizer, tiny_llama):
    kwargs = {"heads": [(0, 1), (1, 0)], "progress": False, **options}
    with pytest.raises((ValueError, TypeError), match=message):
        trace_paths(tiny_llama, tokenizer, Task("t", EXAMPLES), **kwargs)
