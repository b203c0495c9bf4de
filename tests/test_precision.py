"""Exact maps of 16-bit models (issue #23, item 3).

In bfloat16 most heads change the metric by less than the residual stream can hold, so when the
layers after the ablated head run in bfloat16, rounding drowns the small effects (the demo model's
bfloat16 maps ranked heads with Spearman 0.91-0.94 against float32). The replay now runs in
float32 (``replay="float32"``, the default) with its clean copy on the same path; the reference
here is the same bfloat16 weights computed in float32, so only the arithmetic differs.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import Task, score_heads
from headwidget.modeling.precision import Float16OverflowError, float32_compute

TASK = Task("mixed", list(MIXED_EXAMPLES))
BOUND = 0.012  # largest error / largest |score|: float32 replay <= 0.008, old bfloat16 >= 0.017


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


def _pair(tok, dtype: torch.dtype, seed: int):
    """A 4-layer Llama in ``dtype`` and the same (rounded) weights in float32."""
    low = tiny_model("llama", vocab_size=len(tok), n_layers=4, seed=seed).to(dtype)
    return low, copy.deepcopy(low).float()


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("seed", [0, 1])
def test_bfloat16_exact_map_matches_float32(tok, seed):
    low, reference = _pair(tok, torch.bfloat16, seed)
    want = score_heads(reference, tok, TASK, progress=False).values
    got = score_heads(low, tok, TASK, progress=False)
    assert got.meta["replay"] == "float32" and got.meta["dtype"] == "bfloat16"
    assert _relative_error(got.values, want) <= BOUND
    # the model's own dtype is still there (faster on GPUs), and noisier
    noisy = score_heads(low, tok, TASK, progress=False, replay="model")
    assert noisy.meta["replay"] == "model"
    assert _relative_error(noisy.values, want) > BOUND


def test_float16_exact_map_matches_float32(tok):
    low, reference = _pair(tok, torch.float16, 0)
    want = score_heads(reference, tok, TASK, progress=False).values
    got = score_heads(low, tok, TASK, progress=False).values
    assert _relative_error(got, want) <= BOUND


def test_float16_overflow_is_named(tok):
    model = tiny_model("llama", vocab_size=len(tok), n_layers=3)
    with torch.no_grad():  # layer 1's MLP writes far past float16's 65504
        model.model.layers[1].mlp.down_proj.weight.mul_(2e4)
    with pytest.raises(Float16OverflowError, match="float16 overflow.*after decoder layer 1"):
        score_heads(model.half(), tok, TASK, progress=False)


def test_float32_models_are_scored_as_before(tok):
    model = tiny_model("llama", vocab_size=len(tok), n_layers=3)
    default = score_heads(model, tok, TASK, progress=False)
    assert default.meta["replay"] == "model"  # nothing to widen: the path of old
    same = score_heads(model, tok, TASK, progress=False, replay="model")
    np.testing.assert_array_equal(default.values, same.values)


def test_the_clean_copy_works_in_any_chunking(tok):
    low, _ = _pair(tok, torch.bfloat16, 2)
    whole = score_heads(low, tok, TASK, progress=False).values
    # one sequence a replay: the clean copy is a replay of its own, then one head each
    single = score_heads(low, tok, TASK, progress=False, batch_size=1).values
    np.testing.assert_allclose(single, whole, rtol=0, atol=1e-5)
    some = score_heads(low, tok, TASK, progress=False, heads={1: [2], 3: [0, 3]}).values
    np.testing.assert_allclose(some[0, 1, [2]], whole[0, 1, [2]], atol=1e-5)
    np.testing.assert_allclose(some[0, 3, [0, 3]], whole[0, 3, [0, 3]], atol=1e-5)


def test_attribution_exact_cells_replay_in_float32(tok):
    low, reference = _pair(tok, torch.bfloat16, 0)
    got = score_heads(low, tok, TASK, method="attribution", progress=False, exact_layers=4)
    want = score_heads(reference, tok, TASK, progress=False).values
    assert got.meta["replay"] == "float32"
    assert _relative_error(got.values, want) <= BOUND


def test_float32_compute_is_of_this_thread_only():
    layer = torch.nn.Linear(8, 8).to(torch.bfloat16)
    x = torch.randn(2, 8).to(torch.bfloat16)
    seen: list[torch.dtype] = []
    inside, go_on = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait()
        seen.append(layer(x).dtype)  # runs while the main thread is in the block
        go_on.set()

    thread = threading.Thread(target=other)
    thread.start()
    with float32_compute():
        inside.set()
        go_on.wait(10)
        wide = layer(x)
        also = x.to(torch.bfloat16) + 0  # a conversion to 16 bits keeps float32
    thread.join()
    assert seen == [torch.bfloat16]
    assert wide.dtype == also.dtype == torch.float32
    assert layer.weight.dtype == torch.bfloat16
    np.testing.assert_allclose(
        wide.detach().numpy(),
        (x.float() @ layer.weight.float().T + layer.bias.float()).detach().numpy(),
        rtol=1e-6,
    )


def test_a_sweep_of_a_16_bit_model_is_not_resumed_from_the_old_replay(tok):
    from headwidget.sweep.runner import fingerprint

    model = tiny_model("llama", vocab_size=len(tok))
    assert "replay" not in fingerprint(model, "m", [TASK])  # float32: the fingerprint of old
    half = copy.deepcopy(model).to(torch.bfloat16)
    assert fingerprint(half, "m", [TASK])["replay"] == "float32"
    assert "replay" not in fingerprint(half, "m", [TASK], method_options={"replay": "model"})
    assert "replay" not in fingerprint(half, "m", [TASK], method="projection")
