"""The model while it is scored: every module's training flag restored, one scoring call at a
time per model, and other threads' forward passes untouched by headwidget's hooks."""

from __future__ import annotations

import threading

import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model

from headwidget import ModelBusyError, Task
from headwidget.methods.validation import evaluate_tasks, validate_scores
from headwidget.scoring import score_heads

TASK = Task("mixed", list(MIXED_EXAMPLES))


@pytest.fixture
def model(word_tok):
    return tiny_model("llama", vocab_size=len(word_tok), n_layers=2)


def flags(model: torch.nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def mixed_modes(model: torch.nn.Module) -> dict[str, bool]:
    """A train-mode model with some submodules in eval mode (e.g. frozen parts)."""
    model.train()
    model.model.layers[0].eval()
    model.model.layers[1].self_attn.eval()
    model.lm_head.eval()
    before = flags(model)
    assert len(set(before.values())) == 2
    return before


def test_every_modules_training_flag_comes_back(model, word_tok):
    before = mixed_modes(model)
    scores = score_heads(model, word_tok, TASK, progress=False)
    assert flags(model) == before
    validate_scores(scores, model, word_tok, TASK, k=2, n_random=1)
    assert flags(model) == before
    evaluate_tasks(model, word_tok, TASK)
    assert flags(model) == before


def test_training_flags_come_back_after_an_error(model, word_tok):
    before = mixed_modes(model)

    def fail(task, layer, row):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        score_heads(model, word_tok, TASK, progress=False, on_layer=fail)
    assert flags(model) == before


def test_a_second_scoring_call_on_the_same_model_is_refused_at_once(model, word_tok):
    errors: dict[str, BaseException | None] = {}

    def other_thread(name, call):
        try:
            call()
            errors[name] = None
        except BaseException as err:  # noqa: BLE001 - recorded for the assertions
            errors[name] = err

    def on_layer(task, layer, row):
        if layer:
            return
        calls = {
            "score_heads": lambda: score_heads(model, word_tok, TASK, progress=False),
            "evaluate_tasks": lambda: evaluate_tasks(model, word_tok, TASK),
        }
        for name, call in calls.items():
            thread = threading.Thread(target=other_thread, args=(name, call))
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive(), f"{name} waited instead of failing"
        # the same thread (a callback of the running call) is refused too
        with pytest.raises(ModelBusyError, match="already scoring"):
            score_heads(model, word_tok, TASK, progress=False)

    scores = score_heads(model, word_tok, TASK, progress=False, on_layer=on_layer)
    for name in ("score_heads", "evaluate_tasks"):
        assert isinstance(errors[name], ModelBusyError), errors[name]
        assert "already scoring (score_heads is running on it" in str(errors[name])
    # the claim ends with the call: the model can be scored again, also after an error
    again = score_heads(model, word_tok, TASK, progress=False)
    assert (again.values == scores.values).all()


def test_other_threads_forward_passes_are_untouched_while_scoring(model, word_tok):
    """Each time the scoring thread is inside the model (clean pass, recording, and every
    ablated replay), another thread runs the model; it must get the model's own logits."""
    ids = torch.tensor([word_tok("paris is the capital of france")["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    scoring_thread = threading.get_ident()
    seen: list[tuple[bool, float]] = []

    def run_elsewhere() -> None:
        try:
            with torch.no_grad():
                got = model(input_ids=ids).logits
            seen.append((True, float((got - expected).abs().max())))
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            seen.append((False, repr(err)))

    def meanwhile(module, args):
        if threading.get_ident() == scoring_thread:
            thread = threading.Thread(target=run_elsewhere)
            thread.start()
            thread.join()

    # While this runs in the scoring thread, headwidget's state is set for it: recording the
    # clean pass, or ablating a head of this layer in a replay.
    handle = model.model.layers[-1].self_attn.o_proj.register_forward_pre_hook(meanwhile)
    try:
        score_heads(model, word_tok, TASK, progress=False)
    finally:
        handle.remove()
    # the clean pass, the replays of both layers (one chunk each) and the clean-accuracy pass
    assert len(seen) == 4
    assert all(ok for ok, _ in seen), [s for s in seen if not s[0]][:3]
    assert max(diff for _, diff in seen) == 0.0
