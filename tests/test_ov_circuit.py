"""What one head writes (methods/ov_circuit.py): ranks, top tokens and copying scores against
dense per-head logits built from the raw weights, and a planted mapping / copying head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_projection import PAIRS, ids, operation, randomise_vectors
from tiny_models import tiny_model, word_tokenizer

from headwidget import score_heads
from headwidget.methods.ov_circuit import copying_score, head_mapping, ov_top_tokens


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


def dense_rows(model, tokenizer, words, layer, head, first_mlp=True) -> torch.Tensor:
    """[n, vocab]: head (layer, head)'s logits for each source word, densely (Llama-like or
    GPT-2), GQA groups repeated explicitly."""
    config, gpt2 = model.config, model.config.model_type == "gpt2"
    layers = model.transformer.h if gpt2 else model.model.layers
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    hd = config.hidden_size // n_heads
    with torch.no_grad():
        emb = model.get_input_embeddings()(ids(tokenizer, words))
        r = emb
        if first_mlp and layer > 0:
            block = layers[0]
            norm = block.ln_2 if gpt2 else block.post_attention_layernorm
            r = emb + block.mlp(norm(emb))
        block = layers[layer]
        if gpt2:
            d = config.hidden_size
            v = (
                block.ln_1(r) @ block.attn.c_attn.weight[:, 2 * d :]
                + block.attn.c_attn.bias[2 * d :]
            )
            w_o = block.attn.c_proj.weight
            u = model.lm_head.weight * model.transformer.ln_f.weight
            u = u - u.mean(dim=1, keepdim=True)
        else:
            vp = block.self_attn.v_proj
            v = block.input_layernorm(r) @ vp.weight.T + (vp.bias if vp.bias is not None else 0)
            w_o = block.self_attn.o_proj.weight.T
            u = model.lm_head.weight * model.model.norm.weight
        v = v.reshape(len(words), n_kv, hd).repeat_interleave(n_heads // n_kv, dim=1)
        return (v[:, head] @ w_o[head * hd : (head + 1) * hd]) @ u.T


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_ranks_top_tokens_and_copying_equal_the_dense_reference(tok, family):
    model = randomise_vectors(tiny_model(family, vocab_size=len(tok), n_layers=3))
    pairs = PAIRS[:12]
    for layer, head in ((0, 1), (2, 3)):
        mapping = head_mapping(model, tok, layer, head, pairs)
        rows = dense_rows(model, tok, [s for s, _ in pairs], layer, head)
        target = ids(tok, [t for _, t in pairs])
        dense = (rows > rows[torch.arange(len(pairs)), target][:, None]).sum(1) + 1
        assert [p.rank for p in mapping.pairs] == dense.tolist()
        assert [p.top for p in mapping.pairs] == [tok.decode([i]) for i in rows.argmax(1)]
        assert mapping.k == 10 and mapping.fraction == float((dense <= 10).double().mean())
        top = ov_top_tokens(model, tok, layer, head, "cat", n=4)
        cat = rows[0]
        assert [t for t, _ in top["promoted"]] == [tok.decode([i]) for i in cat.topk(4).indices]
        assert [t for t, _ in top["suppressed"]] == [
            tok.decode([i]) for i in (-cat).topk(4).indices
        ]
        np.testing.assert_allclose([v for _, v in top["promoted"]], cat.topk(4).values, rtol=1e-5)
        words = [s for s, _ in pairs]
        square = dense_rows(model, tok, words, layer, head)[:, ids(tok, words)]
        eig = torch.linalg.eigvals(square.double())
        expected = float(eig.real.sum() / eig.abs().sum())
        assert copying_score(model, tok, layer, head, words) == pytest.approx(expected, abs=1e-5)


def test_the_fraction_is_the_heads_projection_score(tok):
    model = randomise_vectors(tiny_model("llama", vocab_size=len(tok), n_layers=2))
    task = operation(PAIRS)
    scores = score_heads(model, tok, task, method="projection", min_pairs=10, progress=False)
    for layer in range(2):
        for head in range(4):
            mapping = head_mapping(model, tok, layer, head, task)
            assert mapping.fraction == pytest.approx(float(scores.values[0, layer, head]))
            suppressed = head_mapping(model, tok, layer, head, task, suppression=True)
            assert all(p.rank >= 1 for p in suppressed.pairs)


def test_a_planted_head_maps_and_copies(tok):
    model = tiny_model("llama", vocab_size=len(tok), tie_word_embeddings=False).double()
    pairs = PAIRS[:8]
    layer, head, group, hd = 1, 3, 1, 8
    block = model.model.layers[layer]
    src, tgt = ids(tok, [s for s, _ in pairs]), ids(tok, [t for _, t in pairs])
    with torch.no_grad():
        x = block.input_layernorm(model.model.embed_tokens.weight[src])
        block.self_attn.v_proj.weight[group * hd : (group + 1) * hd] = torch.linalg.pinv(x).T
        o_proj = block.self_attn.o_proj.weight
        o_proj[:, head * hd : (head + 1) * hd] = (5 * model.lm_head.weight[tgt]).T
    mapping = head_mapping(model, tok, layer, head, pairs, first_mlp=False)
    assert mapping.fraction == 1.0 and mapping.lines(2) == ["cat -> dog (rank 1)",
                                                            "bird -> fish (rank 1)"]  # fmt: skip
    promoted = ov_top_tokens(model, tok, layer, head, "cat", first_mlp=False)["promoted"]
    assert promoted[0][0].strip() == "dog"
    # make it copy: each source's own token, then the opposite
    sources = [s for s, _ in pairs]
    for sign in (1, -1):
        with torch.no_grad():
            o_proj[:, head * hd : (head + 1) * hd] = (sign * 5 * model.lm_head.weight[src]).T
        score = copying_score(model, tok, layer, head, sources, first_mlp=False)
        assert score == pytest.approx(sign, abs=1e-6)
    copy_task = operation([(s, s) for s in sources], name="copying")
    copying = head_mapping(model, tok, layer, head, copy_task, first_mlp=False)
    assert copying.k == 1 and copying.fraction == 0.0  # sign -1: every source pushed down
    assert head_mapping(model, tok, layer, head, copy_task, first_mlp=False,
                        suppression=True).fraction == 1.0  # fmt: skip


def test_skipped_pairs_and_errors(tok):
    model = tiny_model("llama", vocab_size=len(tok))
    mapping = head_mapping(
        model, tok, 0, 0, [("cat", "dog"), ("big cat", "dog"), ("cat", "up down")]
    )
    assert [str(p).split(" (")[0] for p in mapping.pairs] == ["cat -> dog"]
    assert mapping.skipped == [("big cat", "dog"), ("cat", "up down")]
    empty = head_mapping(model, tok, 0, 0, [("big cat", "dog")])
    assert empty.pairs == [] and np.isnan(empty.fraction)
    with pytest.raises(ValueError, match="no head 4"):
        head_mapping(model, tok, 0, 4, [("cat", "dog")])
    with pytest.raises(ValueError, match="no layer 2"):
        ov_top_tokens(model, tok, 2, 0, "cat")
    with pytest.raises(ValueError, match="not one token"):
        ov_top_tokens(model, tok, 0, 0, "big cat")
    with pytest.raises(ValueError, match="at least 2"):
        copying_score(model, tok, 0, 0, ["cat"])
