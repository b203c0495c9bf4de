"""method="projection" (MAPS): planted head, dense references, chunking, errors.

The references below build the full [sources x vocabulary] logits densely from the raw weights
(explicit GQA groups, biases, final-norm folding), which the method itself never does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import WORDS, tiny_model, word_tokenizer

from headwidget import score_heads
from headwidget.methods.projection import count_outranking, final_unembedding
from headwidget.tasks import Example, Task

# (source, target) words of the tiny vocabulary, all distinct, none its own target.
PAIRS = [
    ("cat", "dog"), ("bird", "fish"), ("red", "blue"), ("one", "two"), ("three", "four"),
    ("five", "six"), ("seven", "eight"), ("paris", "france"), ("rome", "italy"),
    ("tokyo", "japan"), ("berlin", "germany"), ("big", "small"), ("hot", "cold"),
    ("up", "down"), ("left", "right"), ("yes", "no"), ("he", "she"), ("city", "country"),
]  # fmt: skip


def operation(pairs=PAIRS, name="op") -> Task:
    return Task(name, [Example(f"{s} ->", f" {t}", source=s) for s, t in pairs])


def randomise_vectors(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Random norm weights and biases (tiny_model leaves them at 1 / 0), so folding matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5 + 0.5)
    return model


def ids(tokenizer, words) -> torch.Tensor:
    return torch.tensor(
        [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    )


def dense_reference(model, tokenizer, pairs, k, first_mlp, suppression=False) -> np.ndarray:
    """[layers, heads] fraction of pairs in the top k, from dense logits."""
    config, family = model.config, model.config.model_type
    src, tgt = ids(tokenizer, [s for s, _ in pairs]), ids(tokenizer, [t for _, t in pairs])
    gpt2 = family == "gpt2"
    layers = model.transformer.h if gpt2 else model.model.layers
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    with torch.no_grad():
        emb = model.get_input_embeddings()(src)
        if family in ("gemma", "gemma2"):
            emb = emb * config.hidden_size**0.5
        res = [emb]
        if first_mlp:
            block = layers[0]
            if gpt2:
                res.append(emb + block.mlp(block.ln_2(emb)))
            elif family.startswith("gemma2") or family.startswith("gemma3"):
                out = block.mlp(block.pre_feedforward_layernorm(emb))
                res.append(emb + block.post_feedforward_layernorm(out))
            else:
                res.append(emb + block.mlp(block.post_attention_layernorm(emb)))
        # U with the final norm's weight folded in, written out per convention
        lm = model.get_output_embeddings().weight
        if gpt2:
            u = lm * model.transformer.ln_f.weight
            u = u - u.mean(dim=1, keepdim=True)
        elif family.startswith("gemma"):
            u = lm * (1 + model.model.norm.weight)
        else:
            u = lm * model.model.norm.weight
        out = np.zeros((len(layers), n_heads))
        for li, block in enumerate(layers):
            r = res[min(li, len(res) - 1)]
            if gpt2:
                x = block.ln_1(r)
                d = config.hidden_size
                v = x @ block.attn.c_attn.weight[:, 2 * d :] + block.attn.c_attn.bias[2 * d :]
                w_o = block.attn.c_proj.weight  # [heads * hd, hidden]
            else:
                x = block.input_layernorm(r)
                vp = block.self_attn.v_proj
                v = x @ vp.weight.T + (vp.bias if vp.bias is not None else 0)
                w_o = block.self_attn.o_proj.weight.T
            v = v.reshape(len(src), n_kv, head_dim).repeat_interleave(n_heads // n_kv, dim=1)
            for h in range(n_heads):
                o = v[:, h] @ w_o[h * head_dim : (h + 1) * head_dim]
                if family in ("gemma2", "gemma3_text"):
                    o = o * (1 + block.post_attention_layernorm.weight)
                logits = (o @ u.T) * (-1 if suppression else 1)  # [n, vocab], dense
                target = logits[torch.arange(len(src)), tgt]
                above = (logits > target[:, None]).sum(1)
                out[li, h] = (above < k).double().mean().item()
    return out


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


def test_planted_head_ranks_first(tok):
    # Head 3 of layer 1 (kv group 1 of 2): W_V of its group sends the first head_dim sources'
    # normalised embeddings to the basis vectors e_i, and W_O sends e_i to 5 x its target's
    # unembedding. So M = E W_V W_O U maps each source to its target, and nothing else does.
    model = tiny_model("llama", vocab_size=len(tok), tie_word_embeddings=False).double()
    pairs = PAIRS[:8]  # head_dim = 8 pairs, one basis vector each
    layer, head, group, hd = 1, 3, 1, 8
    block = model.model.layers[layer]
    with torch.no_grad():
        src, tgt = ids(tok, [s for s, _ in pairs]), ids(tok, [t for _, t in pairs])
        x = block.input_layernorm(model.model.embed_tokens.weight[src])  # [8, hidden]
        w_v = torch.linalg.pinv(x)  # x @ w_v = I
        block.self_attn.v_proj.weight[group * hd : (group + 1) * hd] = w_v.T
        block.self_attn.o_proj.weight[:, head * hd : (head + 1) * hd] = (
            5 * model.lm_head.weight[tgt]
        ).T
    scores = score_heads(
        model, tok, operation(pairs), method="projection", k=1, min_pairs=8, first_mlp=False,
        progress=False,
    )  # fmt: skip
    (top_layer, top_head, top_value), *_ = scores.top_heads("op", k=1)
    assert (top_layer, top_head, top_value) == (layer, head, 1.0)
    others = np.delete(scores.values[0].ravel(), layer * 4 + head)
    assert others.max() <= 0.25, others
    np.testing.assert_allclose(
        scores.values[0], dense_reference(model, tok, pairs, 1, first_mlp=False)
    )


@pytest.mark.parametrize(
    "family, kwargs",
    [
        ("llama", {"tie_word_embeddings": False}),  # GQA (4 heads, 2 kv groups), untied
        ("llama", {"tie_word_embeddings": True}),
        ("qwen2", {}),  # value bias, GQA
        ("gpt2", {}),  # LayerNorm (centred, with bias), Conv1D, tied, value bias
        ("gemma2", {}),  # (1 + w) norms, post-attention norm, embedding scale, 1 kv head
    ],
)
@pytest.mark.parametrize("first_mlp", [False, True])
def test_matches_dense_reference(tok, family, kwargs, first_mlp):
    model = randomise_vectors(tiny_model(family, vocab_size=len(tok), **kwargs)).double()
    task = operation()
    for suppression in (False, True):
        for k in (1, 5):
            got = score_heads(
                model, tok, task, method="projection", k=k, first_mlp=first_mlp,
                suppression=suppression, min_pairs=10, chunk_size=7, progress=False,
            )  # fmt: skip
            want = dense_reference(model, tok, PAIRS, k, first_mlp, suppression)
            np.testing.assert_allclose(got.values[0], want, err_msg=f"{k=} {suppression=}")


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "gemma2", "gemma3_text", "phi3"])
def test_layer0_matches_the_head_outputs_the_model_computes(tok, family):
    # A one-token input attends only to itself, so the input of layer 0's o_proj is each head's
    # value vector of that token as the model computes it (embedding scale, norm, GQA, bias).
    # One task maps the source to every word; its score at k is the share of words in the top k.
    model = randomise_vectors(tiny_model(family, vocab_size=len(tok))).double()
    source = "paris"
    gpt2 = family == "gpt2"
    out_proj = (
        model.transformer.h[0].attn.c_proj if gpt2 else model.model.layers[0].self_attn.o_proj
    )
    if gpt2:  # the method reads token embeddings only (as MAPS): no learned position embedding
        torch.nn.init.zeros_(model.transformer.wpe.weight)
    seen = []
    handle = out_proj.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(input_ids=ids(tok, [source])[None])
    handle.remove()
    heads = seen[0][0, 0].reshape(4, -1)  # [heads, head_dim]
    w_o = (out_proj.weight if gpt2 else out_proj.weight.T).reshape(4, heads.shape[1], -1)
    if family in ("gemma2", "gemma3_text"):
        w_o = w_o * (1 + model.model.layers[0].post_attention_layernorm.weight)
    unembed = final_unembedding(model, torch.float64, torch.device("cpu"))
    targets = ids(tok, WORDS)
    task = Task("all", [Example(f"{source} ->", f" {w}", source=source) for w in WORDS])
    for k in (1, 5, 20):
        scores = score_heads(
            model, tok, task, method="projection", k=k, min_pairs=1, progress=False
        )
        for h in range(4):
            logits = unembed @ (heads[h] @ w_o[h])
            above = (logits[None, :] > logits[targets][:, None]).sum(1)
            assert scores.values[0, 0, h] == pytest.approx((above < k).double().mean().item())


@pytest.mark.parametrize("n_pairs", [3, 40])  # fewer / more open pairs than head_dim (8)
def test_count_outranking_matches_dense_counts_for_every_chunk_size(n_pairs):
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(10, 3, 8, generator=gen, dtype=torch.float64)
    w_o = torch.randn(3, 8, 16, generator=gen, dtype=torch.float64)
    unembed = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    source = torch.randint(0, 10, (n_pairs,), generator=gen)
    # targets the head ranks high (so pairs stay open past the first chunk) and random ones
    best = torch.stack([(unembed @ (values[s, 0] @ w_o[0])).argsort()[-3] for s in source])
    target = torch.where(torch.arange(n_pairs) % 2 == 0, best, torch.randint(0, 300, (n_pairs,)))
    cap = torch.full((n_pairs,), 1000)
    logits = torch.einsum("phc,hcd,vd->hpv", values[source], w_o, unembed)
    target_logit = logits.gather(2, target[None, :, None].expand(3, -1, 1))
    dense = (logits > target_logit).sum(-1)
    for chunk in (1, 7, 64, 299, 300, 5000):
        got = count_outranking(values, w_o, unembed, source, target, cap, chunk)
        torch.testing.assert_close(got, dense, msg=f"chunk_size={chunk}")
        capped = count_outranking(
            values, w_o, unembed, source, target, torch.full_like(cap, 5), chunk
        )
        assert ((capped >= 5) == (dense >= 5)).all() and (
            capped[dense < 5] == dense[dense < 5]
        ).all()


def test_scores_do_not_depend_on_the_chunk_size(tok):
    model = randomise_vectors(tiny_model("llama", vocab_size=len(tok)))
    runs = [
        score_heads(model, tok, operation(), method="projection", min_pairs=10, chunk_size=c,
                    progress=False).values
        for c in (1, 5, 32, 10_000)
    ]  # fmt: skip
    for values in runs[1:]:
        np.testing.assert_array_equal(values, runs[0])


def test_meta_units_and_default_k(tok):
    model = tiny_model("llama", vocab_size=len(tok))
    copy = operation([(s, s) for s, _ in PAIRS], name="copy")
    scores = score_heads(model, tok, [copy, operation()], method="projection", min_pairs=10,
                         progress=False)  # fmt: skip
    assert scores.method == "projection" and scores.exact is None
    meta = scores.meta
    assert meta["method"] == "projection" and meta["units"] == "fraction of pairs"
    assert meta["k"] == {"copy": 1, "op": 10} and meta["pairs"] == {"copy": 18, "op": 18}
    assert meta["dropped"] == {} and meta["first_mlp"] is True and meta["suppression"] is False
    assert scores.baseline == {} and scores.accuracy == {}  # nothing runs on prompts
    values = scores.values
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    assert (values * 18 == np.round(values * 18)).all()  # fractions of the 18 pairs


def test_tasks_without_sources_or_pairs_get_clear_errors(tok):
    model = tiny_model("llama", vocab_size=len(tok))
    plain = Task("caps", [("paris ->", " france"), ("rome ->", " italy")])
    with pytest.raises(ValueError, match=r"needs Example.source.*'caps'.*example\(s\) 0, 1"):
        score_heads(model, tok, plain, method="projection", progress=False)
    # "zebra" is not in the vocabulary: <unk> is one token, but "blue zebra" is two
    multi = Task("multi", [Example("x ->", " red", source="blue zebra")] * 3)
    with pytest.raises(ValueError, match=r"no task has enough single-token.*'multi': 0"):
        score_heads(model, tok, multi, method="projection", progress=False)
    with pytest.warns(UserWarning, match=r"task 'multi' has only 0 .* fewer than min_pairs=10"):
        scores = score_heads(model, tok, [operation(), multi], method="projection",
                             min_pairs=10, progress=False)  # fmt: skip
    assert np.isnan(scores.values[1]).all() and np.isfinite(scores.values[0]).all()
    assert scores.meta["dropped"] == {"multi": 0}
    with pytest.raises(ValueError, match="k must be a whole number >= 1 or None, got 0"):
        score_heads(model, tok, operation(), method="projection", k=0, progress=False)
    with pytest.raises(TypeError, match=r"does not take \['steps'\]"):
        score_heads(model, tok, operation(), method="projection", steps=3, progress=False)
    with pytest.raises(ValueError, match="knows the architectures"):
        score_heads(tiny_model("opt", vocab_size=len(tok)), tok, operation(),
                    method="projection", progress=False)  # fmt: skip


def test_projection_options_pass_the_shared_checks_the_widget_uses():
    from headwidget.methods.options import SCORING_OPTIONS, check_options

    assert {"k", "suppression", "first_mlp", "min_pairs", "chunk_size"} <= set(SCORING_OPTIONS)
    checked = check_options(method="projection", k=3, suppression=True)
    assert checked["k"] == 3 and checked["suppression"] is True and checked["first_mlp"] is True
    with pytest.raises(ValueError, match="first_mlp must be True or False"):
        check_options(method="projection", first_mlp="yes")
