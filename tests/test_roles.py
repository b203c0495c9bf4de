"""detect_heads: role scores against an independent plain-torch reference (and TransformerLens's
detector when its venv is there), on every architecture, with the model put back exactly."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import DETECTED_FAMILIES, FAMILIES, tiny_model, word_tokenizer

from headwidget import HeadScores, ModelBusyError, detect_heads
from headwidget.methods.patterns import (
    BUILTIN_ROLES,
    Role,
    duplicate_token_pattern,
    induction_pattern,
    pattern_scores,
)
from headwidget.methods.roles import head_roles, random_sequences
from headwidget.modeling.session import model_session

ROOT = Path(__file__).resolve().parents[1]


# -- the reference: Python loops over positions, on a model loaded in eager attention -------------


def reference_target(role: str, ids: list[int], q: int, k: int) -> float:
    """Whether query ``q`` attends to key ``k`` under ``role`` (written from the definitions)."""
    if k > q:
        return 0.0
    if role == "previous token":
        return float(k == q - 1)
    if role == "duplicate token":
        return float(k < q and ids[k] == ids[q])
    if role == "induction":
        return float(k >= 1 and ids[k - 1] == ids[q] and k - 1 < q)
    if role == "first token":
        return float(q >= 1 and k == 0)
    if role == "current token":
        return float(q >= 1 and k == q)
    raise ValueError(role)


def reference(eager_model, sequences, role, *, exclude_bos, exclude_current, measure, rows):
    """[layers, heads]: the mean over sequences of each head's score, by loops."""
    keeps_first, keeps_current = role == "first token", role == "current token"
    skip_first, skip_current = (
        exclude_bos and not keeps_first,
        exclude_current and not keeps_current,
    )
    per_sequence = []
    for ids in sequences.tolist():
        with torch.no_grad():
            out = eager_model(torch.tensor([ids]), output_attentions=True, use_cache=False)
        n = len(ids)
        target = [[reference_target(role, ids, q, k) for k in range(n)] for q in range(n)]
        counted = [q for q in range(n) if rows == "all" or any(target[q])]
        scores = np.zeros((len(out.attentions), out.attentions[0].shape[1]))
        for layer, weights in enumerate(out.attentions):
            for head in range(weights.shape[1]):
                a = weights[0, head].double().tolist()
                hit = total = distance = 0.0
                for q in counted:
                    for k in range(n):
                        if (skip_first and k == 0) or (skip_current and k == q):
                            continue
                        hit += a[q][k] * target[q][k]
                        total += a[q][k]
                        distance += abs(a[q][k] - target[q][k])
                if measure == "mul":
                    scores[layer, head] = hit / total
                else:
                    scores[layer, head] = 1 - distance / len(counted)
        per_sequence.append(scores)
    return np.mean(per_sequence, axis=0)


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


@pytest.fixture(scope="module")
def sequences(tok):
    pool = torch.arange(4, len(tok))
    return random_sequences(pool, 3, 10, first=tok.bos_token_id, repeated=True, seed=3)


@pytest.mark.parametrize(
    ("exclude_bos", "exclude_current", "measure", "rows"),
    list(itertools.product((False, True), (False, True), ("mul", "abs"), ("pattern", "all"))),
)
def test_every_role_and_setting_equals_the_loop_reference(
    tok, sequences, exclude_bos, exclude_current, measure, rows
):
    model = tiny_model("llama", vocab_size=len(tok))  # sdpa; grouped-query attention
    eager = tiny_model("llama", vocab_size=len(tok), attn_implementation="eager")
    scores = detect_heads(
        model, tok, sequences=sequences, exclude_bos=exclude_bos,
        exclude_current_token=exclude_current, error_measure=measure, rows=rows, progress=False,
    )  # fmt: skip
    assert scores.tasks == list(BUILTIN_ROLES) and scores.method == "pattern"
    for role in scores.tasks:
        expected = reference(
            eager, sequences, role, exclude_bos=exclude_bos, exclude_current=exclude_current,
            measure=measure, rows=rows,
        )  # fmt: skip
        np.testing.assert_allclose(scores[role], expected, atol=1e-5, err_msg=role)


def test_random_sequences_are_seeded_distinct_and_repeat_for_induction(tok):
    model = tiny_model("gpt2", vocab_size=len(tok))
    eager = tiny_model("gpt2", vocab_size=len(tok), attn_implementation="eager")
    a = detect_heads(model, tok, n_sequences=3, seq_len=12, seed=5, progress=False)
    b = detect_heads(model, tok, n_sequences=3, seq_len=12, seed=5, progress=False)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.meta["seq_len"] == {"random": 13, "repeated": 13}
    assert a.meta["n_sequences"] == {"random": 3, "repeated": 3}
    assert a.meta["units"] == "attention share" and a.meta["rows"] == "pattern"
    pool = torch.tensor([i for i in range(len(tok)) if i not in tok.all_special_ids])
    plain = random_sequences(pool, 3, 12, first=tok.bos_token_id, repeated=False, seed=5)
    repeated = random_sequences(pool, 3, 12, first=tok.bos_token_id, repeated=True, seed=5)
    assert (plain[:, 0] == tok.bos_token_id).all() and (repeated[:, 0] == tok.bos_token_id).all()
    assert all(len(set(row[1:].tolist())) == 12 for row in plain)
    torch.testing.assert_close(repeated[:, 1:7], repeated[:, 7:])
    assert not np.isin(plain[:, 1:].numpy(), tok.all_special_ids).any()
    for role, ids in (("previous token", plain), ("induction", repeated)):
        kwargs = dict(exclude_bos=False, exclude_current=False, measure="mul", rows="pattern")
        np.testing.assert_allclose(a[role], reference(eager, ids, role, **kwargs), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES + DETECTED_FAMILIES)
def test_every_architecture(tok, sequences, family):
    model = tiny_model(family, vocab_size=len(tok))
    eager = tiny_model(family, vocab_size=len(tok), attn_implementation="eager")
    scores = detect_heads(model, tok, ["previous token", "induction"], sequences=sequences,
                          progress=False)  # fmt: skip
    n_layers = len(eager(sequences[:1], output_attentions=True).attentions)
    assert scores.shape[1] == n_layers
    kwargs = dict(exclude_bos=False, exclude_current=False, measure="mul", rows="pattern")
    for role in scores.tasks:
        np.testing.assert_allclose(scores[role], reference(eager, sequences, role, **kwargs),
                                   atol=1e-5, err_msg=f"{family} {role}")  # fmt: skip


def _state(model):
    configs = {
        id(m.config): (m.config, dict(m.config.__dict__)) for m in model.modules()
        if hasattr(m, "config")
    }  # fmt: skip
    hooks = sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )
    flags = [m.training for m in model.modules()]
    return configs, hooks, flags, [p.detach().clone() for p in model.parameters()]


def test_the_model_comes_back_exactly(tok, sequences):
    model = tiny_model("llama", vocab_size=len(tok))
    model.model.layers[1].train()  # mixed training flags
    ids = sequences[:2]
    with torch.no_grad():
        logits = model(ids).logits
    before = _state(model)
    detect_heads(model, tok, n_sequences=2, seq_len=8, progress=False)
    after = _state(model)
    assert {k: v[1] for k, v in after[0].items()} == {k: v[1] for k, v in before[0].items()}
    assert after[1:3] == before[1:3] and model.config._attn_implementation == "sdpa"
    for p, q in zip(after[3], before[3], strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids).logits, logits, rtol=0, atol=0)

    def broken(ids):
        raise RuntimeError("role function failed")

    model.model.layers[1].train()
    with pytest.raises(RuntimeError, match="role function failed"):
        detect_heads(model, tok, {"broken": broken}, n_sequences=2, seq_len=8, progress=False)
    assert {k: v[1] for k, v in _state(model)[0].items()} == {k: v[1] for k, v in before[0].items()}
    assert _state(model)[2] == before[2]
    eager = tiny_model("llama", vocab_size=len(tok), attn_implementation="eager")
    detect_heads(eager, tok, n_sequences=2, seq_len=8, progress=False)
    assert eager.config.__dict__["_attn_implementation_internal"] == "eager"


def test_a_model_being_scored_is_refused(tok):
    model = tiny_model("llama", vocab_size=len(tok))
    with model_session(model, "score_heads"), pytest.raises(ModelBusyError):
        detect_heads(model, tok, n_sequences=1, seq_len=8, progress=False)


def test_custom_roles_masks_weights_and_their_errors(tok, sequences):
    model = tiny_model("qwen2", vocab_size=len(tok))

    def two_back(ids):
        mask = torch.zeros(len(ids), len(ids), dtype=torch.bool)
        mask[2:, :-2] = torch.eye(len(ids) - 2, dtype=torch.bool)
        return mask

    same = Role("same token", duplicate_token_pattern, repeated=True, description="copies")
    scores = detect_heads(
        model, tok, {"two back": two_back, "same token": same, "dup": duplicate_token_pattern},
        sequences=sequences, progress=False,
    )  # fmt: skip
    assert scores.tasks == ["two back", "same token", "dup"]
    np.testing.assert_array_equal(scores["same token"], scores["dup"])
    assert scores.descriptions == {"same token": "copies"}
    # the same scores from the numpy pattern of a list input
    as_numpy = detect_heads(model, tok, {"two back": lambda ids: two_back(ids).numpy()},
                            sequences=sequences.tolist(), progress=False)  # fmt: skip
    np.testing.assert_array_equal(as_numpy["two back"], scores["two back"])
    with pytest.raises(ValueError, match="above the diagonal"):
        detect_heads(model, tok, {"future": lambda ids: two_back(ids).T}, seq_len=8, progress=False)
    with pytest.raises(ValueError, match=r"must be \[13, 13\]"):
        detect_heads(model, tok, {"small": lambda ids: torch.zeros(3, 3)}, seq_len=12,
                     progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="unknown role 'inductoin'"):
        detect_heads(model, tok, ["inductoin"], progress=False)
    with pytest.raises(ValueError, match="exceed the model's context"):
        detect_heads(model, tok, seq_len=64, progress=False)
    for bad in ({"error_measure": "l2"}, {"rows": "some"}, {"seq_len": 2}, {"n_sequences": 0},
                {"exclude_bos": 1}, {"batch_size": 0}):  # fmt: skip
        with pytest.raises(ValueError):
            detect_heads(model, tok, **{"seq_len": 8, **bad}, progress=False)
    with pytest.warns(UserWarning, match="no sequence had a position"):
        none = detect_heads(model, tok, ["duplicate token"], sequences=sequences[:, :6],
                            progress=False)  # fmt: skip
    assert np.isnan(none.values).all()


def test_batches_exclusions_that_would_empty_a_role_and_the_saved_file(tok, sequences, tmp_path):
    model = tiny_model("gemma", vocab_size=len(tok))
    whole = detect_heads(model, tok, sequences=sequences, exclude_bos=True,
                         exclude_current_token=True, progress=False)  # fmt: skip
    one_by_one = detect_heads(model, tok, sequences=sequences, exclude_bos=True,
                              exclude_current_token=True, batch_size=1, progress=False)  # fmt: skip
    np.testing.assert_allclose(whole.values, one_by_one.values, atol=1e-6)
    # exclude_bos does not apply to "first token", nor exclude_current_token to "current token"
    assert whole.meta["exclude_bos"]["first token"] is False
    assert whole.meta["exclude_current_token"]["current token"] is False
    assert whole.meta["exclude_bos"]["induction"] is True
    assert (whole["first token"] > 0).all() and (whole["current token"] > 0).all()
    loaded = HeadScores.load(whole.save(tmp_path / "roles.npz"))
    np.testing.assert_array_equal(loaded.values, whole.values)
    assert loaded.meta["units"] == "attention share" and loaded.method == "pattern"


def test_bfloat16_agrees_with_float32(tok, sequences):
    model = tiny_model("llama", vocab_size=len(tok))
    full = detect_heads(model, tok, sequences=sequences, progress=False)
    half = detect_heads(model.to(torch.bfloat16), tok, sequences=sequences, progress=False)
    assert half.meta["dtype"] == "bfloat16"
    np.testing.assert_allclose(half.values, full.values, atol=0.03)


def test_pattern_scores_and_head_roles():
    ids = torch.tensor([1, 7, 8, 7, 8])
    assert induction_pattern(ids)[3].tolist() == [0, 0, 1, 0, 0]
    perfect = induction_pattern(ids).clone()
    perfect[:3, 0] = 1  # the first half attends to the first token
    attention = perfect[None, None]
    assert pattern_scores(attention, induction_pattern(ids)[None]).item() == 1.0
    everywhere = pattern_scores(attention, induction_pattern(ids)[None], rows="all")
    assert everywhere.item() == pytest.approx(0.4)
    scores = HeadScores(np.array([[[0.9, 0.39]], [[0.45, 0.41]]]), ["induction", "first token"])
    assert head_roles(scores) == {(0, 0): ["induction", "first token"], (0, 1): ["first token"]}
    assert head_roles(scores, threshold=0.5) == {(0, 0): ["induction"]}


TL_PYTHON = ROOT / ".venv-tl" / "bin" / "python"


@pytest.mark.skipif(not TL_PYTHON.exists(), reason="no TransformerLens venv (.venv-tl)")
def test_transformerlens_agrees():
    """scripts/check_roles_against_transformerlens.py in the TransformerLens venv (the tiny
    models, and the demo model when its cache is there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(TL_PYTHON), str(ROOT / "scripts" / "check_roles_against_transformerlens.py")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OK: detect_heads equals TransformerLens" in done.stdout


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
