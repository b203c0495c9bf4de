"""detect_heads on the real demo model (SmolLM2-135M-Instruct): its known induction and
previous-token heads come out on top, and the model comes back as it was."""

from __future__ import annotations

import torch

from headwidget import detect_heads


def test_the_demo_models_induction_and_previous_token_heads(demo):
    model, tokenizer = demo
    before = dict(model.config.__dict__)
    hooks = [dict(m._forward_hooks) for m in model.modules()]
    ids = torch.tensor([[1, 450, 3000, 450, 3000]])
    with torch.no_grad():
        logits = model(ids).logits
    scores = detect_heads(model, tokenizer, ["induction", "previous token"], progress=False)
    induction = {(layer, head) for layer, head, _ in scores.top_heads("induction", 5)}
    previous = {(layer, head) for layer, head, _ in scores.top_heads("previous token", 5)}
    assert len(induction & {(18, 6), (17, 3), (17, 4)}) >= 2, scores.top_heads("induction", 5)
    assert {(16, 0), (11, 1)} <= previous, scores.top_heads("previous token", 5)
    assert scores.shape == (2, 30, 9) and scores.meta["units"] == "attention share"
    assert dict(model.config.__dict__) == before and not model.training
    assert [dict(m._forward_hooks) for m in model.modules()] == hooks
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, logits, rtol=0, atol=0)
