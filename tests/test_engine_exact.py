"""score_heads equals a brute-force reference for every supported architecture.

The reference runs one full, unpadded model forward per (example, head), replacing the head's
slice of the attention output projection's input with a hook, and reads the model's own logits.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import DETECTED_FAMILIES, FAMILIES, tiny_model
from transformers import CONFIG_MAPPING

from headwidget import Task
from headwidget.scoring import score_heads

# Path of the attention output projection inside each decoder layer, and where the layers are:
# written out here independently of headwidget.adapters so the test checks the adapters too.
_LAYERS = {
    "gpt2": "transformer.h",
    "gpt_bigcode": "transformer.h",
    "gpt_neo": "transformer.h",
    "codegen": "transformer.h",
    "mpt": "transformer.blocks",
    "biogpt": "biogpt.layers",
    "gptj": "transformer.h",
    "falcon": "transformer.h",
    "falcon_alibi": "transformer.h",
    "bloom": "transformer.h",
    "gpt_neox": "gpt_neox.layers",
    "opt": "model.decoder.layers",
}
_OUT_PROJ = {
    "gpt2": "attn.c_proj",
    "gpt_bigcode": "attn.c_proj",
    "gpt_neo": "attn.attention.out_proj",
    "codegen": "attn.out_proj",
    "mpt": "attn.out_proj",
    "xglm": "self_attn.out_proj",
    "biogpt": "self_attn.out_proj",
    "phi": "self_attn.dense",
    "persimmon": "self_attn.dense",
    "gptj": "attn.out_proj",
    "falcon": "self_attention.dense",
    "falcon_alibi": "self_attention.dense",
    "bloom": "self_attention.dense",
    "gpt_neox": "attention.dense",
    "opt": "self_attn.out_proj",
}
N_HEADS = 4

# Unequal prompt lengths (padding) and answers of 1-3 tokens.
EXAMPLES = [
    ("the cat is", " red", " blue"),
    ("one two three four five six", " seven eight", " ten"),
    ("paris is the capital of", " france", " italy"),
    ("big dog", " up down left", " up right"),  # logit_diff compares where they part
    ("tokyo is in", " japan", " germany"),
]
TASK = Task("mixed", EXAMPLES, category="Knowledge", description="tiny test task")


def _get(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _out_projs(family, model):
    layers = _get(model, _LAYERS.get(family, "model.layers"))
    n = model.config.num_hidden_layers
    return [_get(layer, _OUT_PROJ.get(family, "self_attn.o_proj")) for layer in list(layers)[:n]]


def _split(tok, prompt, answer):
    p = tok(prompt)["input_ids"]
    full = tok(prompt + answer)["input_ids"]
    assert full[: len(p)] == p
    return p, full[len(p) :]


def _metrics(logits, p_len, answer, distractor):
    """All four metrics from one example's logits [T, V]."""
    logp = torch.log_softmax(logits.double(), -1)
    rows = [p_len - 1 + j for j in range(len(answer))]
    lp = sum(float(logp[r, a]) for r, a in zip(rows, answer, strict=True))
    acc = float(all(int(logits[r].argmax()) == a for r, a in zip(rows, answer, strict=True)))
    split = next(j for j, (a, d) in enumerate(zip(answer, distractor, strict=False)) if a != d)
    diff = float(
        logits[p_len - 1 + split, answer[split]] - logits[p_len - 1 + split, distractor[split]]
    )
    return {
        "logprob": lp,
        "prob": float(torch.tensor(lp).exp()),
        "accuracy": acc,
        "logit_diff": diff,
    }


def brute_force(family, model, tok, examples, ablation):
    """{metric: [n_layers, n_heads] importance} by one full forward per (example, head)."""
    projs = _out_projs(family, model)
    encoded = []
    for prompt, answer, distractor in examples:
        p, a = _split(tok, prompt, answer)
        _, d = _split(tok, prompt, distractor)
        encoded.append((p, a, d))

    def run(ids, hook_layer=None, hook=None):
        handle = projs[hook_layer].register_forward_pre_hook(hook) if hook else None
        try:
            with torch.no_grad():
                return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
        finally:
            if handle:
                handle.remove()

    # Mean of every head's output over all examples and all positions the model reads.
    sums = [0.0] * len(projs)
    count = 0
    for p, a, _ in encoded:
        seen = {}
        handles = [
            proj.register_forward_pre_hook(
                lambda m, args, i=i, seen=seen: seen.__setitem__(i, args[0][0])
            )
            for i, proj in enumerate(projs)
        ]
        run(p + a[:-1])
        for h in handles:
            h.remove()
        for i in range(len(projs)):
            sums[i] = sums[i] + seen[i].double().sum(0)
        count += len(p + a[:-1])
    means = [(s / count).float() for s in sums]

    clean = [_metrics(run(p + a[:-1]), len(p), a, d) for p, a, d in encoded]
    names = clean[0].keys()
    out = {m: torch.zeros(len(projs), N_HEADS, dtype=torch.float64) for m in names}
    for layer in range(len(projs)):
        head_dim = means[layer].numel() // N_HEADS
        for head in range(N_HEADS):
            sl = slice(head * head_dim, (head + 1) * head_dim)

            def hook(module, args, layer=layer, sl=sl):
                x = args[0].clone()
                x[..., sl] = means[layer][sl] if ablation == "mean" else 0.0
                return (x, *args[1:])

            for (p, a, d), c in zip(encoded, clean, strict=True):
                ablated = _metrics(run(p + a[:-1], layer, hook), len(p), a, d)
                for m in names:
                    out[m][layer, head] += (c[m] - ablated[m]) / len(encoded)
    return out, {m: sum(c[m] for c in clean) / len(clean) for m in names}


@pytest.fixture(scope="module")
def models(word_tok, tmp_path_factory):
    built = {}
    for family in FAMILIES:
        built[family] = tiny_model(family, vocab_size=len(word_tok), n_layers=3)
    # The local from_pretrained path: save one family and load it back.
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    built["llama"].save_pretrained(path)
    built["llama"] = AutoModelForCausalLM.from_pretrained(path).float().eval()
    return built


@pytest.mark.parametrize("family", FAMILIES)
def test_matches_brute_force_logprob(models, word_tok, family):
    model = models[family]
    for ablation in ("mean", "zero"):
        expected, baseline = brute_force(family, model, word_tok, EXAMPLES, ablation)
        scores = score_heads(model, word_tok, TASK, ablation=ablation, progress=False)
        assert scores.shape == (1, model.config.num_hidden_layers, N_HEADS)
        got = torch.from_numpy(scores.values[0]).double()
        assert torch.allclose(got, expected["logprob"], atol=1e-4, rtol=0), (
            f"{family}/{ablation}: max diff {(got - expected['logprob']).abs().max():.2e}"
        )
        assert scores.baseline["mixed"] == pytest.approx(baseline["logprob"], abs=1e-4)
        # The scores are not trivially zero: heads do matter in these random models.
        assert got.abs().max() > 1e-3


@pytest.mark.parametrize("metric", ["prob", "accuracy", "logit_diff"])
def test_other_metrics_match_brute_force(models, word_tok, metric):
    for family in ("llama", "gpt2"):
        model = models[family]
        expected, baseline = brute_force(family, model, word_tok, EXAMPLES, "mean")
        scores = score_heads(model, word_tok, TASK, metric=metric, progress=False)
        got = torch.from_numpy(scores.values[0]).double()
        assert torch.allclose(got, expected[metric], atol=1e-4, rtol=0), (family, got, expected)
        assert scores.baseline["mixed"] == pytest.approx(baseline[metric], abs=1e-4)


def test_metadata_and_descriptions(models, word_tok):
    scores = score_heads(models["llama"], word_tok, TASK, metric="prob", progress=False)
    meta = scores.meta
    assert meta["ablation"] == "mean" and meta["metric"] == "prob"
    assert meta["architecture"] == "LlamaForCausalLM"
    assert meta["examples"] == {"mixed": len(EXAMPLES)}
    assert set(meta["versions"]) == {"headwidget", "torch", "transformers", "numpy"}
    assert meta["device"] == "cpu" and meta["dtype"] == "float32"
    assert meta["seconds"] > 0 and meta["created"]
    assert meta["model"]  # the tmp dir it was loaded from
    assert scores.categories == {"mixed": "Knowledge"}
    assert scores.descriptions == {"mixed": "tiny test task"}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_subset_of_heads_matches_brute_force(models, word_tok, family):
    """heads={layer: [head, ...]}: those cells exact, the rest NaN (refinement's path)."""
    model = models[family]
    expected, _ = brute_force(family, model, word_tok, EXAMPLES, "mean")
    chosen = {0: [3, 1], 2: [2]}
    scores = score_heads(model, word_tok, TASK, heads=chosen, batch_size=3, progress=False)
    got = torch.from_numpy(scores.values[0]).double()
    picked = torch.zeros_like(got, dtype=torch.bool)
    for layer, heads in chosen.items():
        picked[layer, heads] = True
    assert torch.allclose(got[picked], expected["logprob"][picked], atol=1e-4, rtol=0)
    assert torch.isnan(got[~picked]).all()
    assert scores.meta["heads"] == {"0": [1, 3], "2": [2]}


@pytest.mark.parametrize("family", DETECTED_FAMILIES)
def test_detected_architectures_match_brute_force(word_tok, family):
    """Architectures with no built-in description: the layout found by convention (and checked
    on a forward pass) scores exactly like the brute-force reference."""
    from headwidget.modeling.adapters import SUPPORTED_ARCHITECTURES, describe_model

    if family not in CONFIG_MAPPING:
        pytest.skip(f"this transformers has no {family!r} models")
    assert family not in SUPPORTED_ARCHITECTURES
    model = tiny_model(family, vocab_size=len(word_tok), n_layers=3)
    assert describe_model(model).name == f"{family} (detected)"
    for ablation in ("mean", "zero"):
        expected, baseline = brute_force(family, model, word_tok, EXAMPLES, ablation)
        scores = score_heads(model, word_tok, TASK, ablation=ablation, progress=False)
        assert scores.shape == (1, 3, N_HEADS)
        got = torch.from_numpy(scores.values[0]).double()
        assert torch.allclose(got, expected["logprob"], atol=1e-4, rtol=0), (
            f"{family}/{ablation}: max diff {(got - expected['logprob']).abs().max():.2e}"
        )
        assert scores.baseline["mixed"] == pytest.approx(baseline["logprob"], abs=1e-4)
        assert got.abs().max() > 1e-3
