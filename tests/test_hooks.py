"""The hook toolkit (headwidget.modeling.hooks): each strategy against a hand-written hook, the
owning-thread guard, removal on exceptions, and no hook registered outside headwidget.modeling."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
import torch

from headwidget.modeling.adapters import resolve_layout
from headwidget.modeling.hooks import (
    Ablate,
    CaptureCalls,
    HeadSums,
    hooks,
    run_to_last_layer,
)
from headwidget.modeling.inputs import Batch

IDS = torch.tensor([[1, 5, 9, 13, 17, 21], [2, 6, 10, 14, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])


@pytest.fixture(scope="module")
def setup(tiny_llama):
    return tiny_llama.eval(), resolve_layout(tiny_llama, None)


def _logits(model, ids=IDS, mask=MASK):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, use_cache=False).logits


def _hand_hooked(model, module, hook, ids=IDS, mask=MASK, **kwargs):
    """The logits with ``hook`` registered on ``module`` by hand: the reference."""
    handle = module.register_forward_pre_hook(hook, **kwargs)
    try:
        return _logits(model, ids, mask)
    finally:
        handle.remove()


def _n_hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_read_head_sums_and_the_heads_view(setup):
    model, lay = setup
    kept = []  # the reference: every out_proj input, by hand
    handles = [
        p.register_forward_pre_hook(lambda m, a: kept.append(a[0].detach().clone()))
        for p in lay.out_projs
    ]
    try:
        _logits(model)
    finally:
        for h in handles:
            h.remove()
    sums, seen = HeadSums(lay.n_layers), []
    sums.token_mask = MASK.reshape(-1).bool()
    with hooks(lay, heads=sums):
        _logits(model)
    with hooks(lay, heads=lambda layer, x: seen.append((layer, x.clone()))):  # form "heads"
        _logits(model)
    means = sums.means(lay.n_heads, lay.head_dim)
    keep = MASK.bool()
    for i, x in enumerate(kept):
        assert torch.equal(means[i], x[keep].float().mean(0).view(lay.n_heads, lay.head_dim))
        assert seen[i][0] == i
        assert torch.equal(seen[i][1], x.view(*x.shape[:-1], lay.n_heads, lay.head_dim))
    assert _n_hooks(model) == 0


def test_replace_heads_per_copy_and_together(setup):
    model, lay = setup
    layer, d = 1, lay.head_dim
    fill = torch.randn(lay.n_heads, d, generator=torch.Generator().manual_seed(0))
    ids, mask = IDS.repeat(2, 1), MASK.repeat(2, 1)  # copy 0: head 3 ablated, copy 1: head 0

    def by_hand(module, args):
        x = args[0].clone()
        x[:2, :, 3 * d : 4 * d] = fill[3]
        x[2:, :, 0:d] = fill[0]
        return (x, *args[1:])

    expected = _hand_hooked(model, lay.out_projs[layer], by_hand, ids, mask)
    heads = torch.tensor([3, 0])
    plan = {layer: Ablate.tiled(heads, fill[heads].unsqueeze(1))}
    with hooks(lay, heads=Ablate(lay, plan, n_copies=2), layers=plan):
        assert torch.equal(_logits(model, ids, mask), expected)

    def together(module, args):  # heads 1 and 2 of layer 0 zeroed, in every example
        x = args[0].clone()
        x[..., d : 3 * d] = 0.0
        return (x, *args[1:])

    expected = _hand_hooked(model, lay.out_projs[0], together)
    plan = {0: Ablate.together(torch.tensor([1, 2]), torch.zeros(lay.n_heads, d))}
    with hooks(lay, heads=Ablate(lay, plan), layers=plan):
        assert torch.equal(_logits(model), expected)
    assert _n_hooks(model) == 0


def test_add_to_heads_and_replace_the_residual_stream(setup):
    model, lay = setup
    d = lay.head_dim

    def add_by_hand(module, args):
        x = args[0].clone()
        x[..., 2 * d : 3 * d] += 0.5
        return (x, *args[1:])

    def add(layer, heads):  # [..., n_heads, head_dim]
        return heads + torch.tensor([0.0, 0.0, 0.5, 0.0])[:, None]

    expected = _hand_hooked(model, lay.out_projs[1], add_by_hand)
    with hooks(lay, heads=add, layers=[1]):
        assert torch.equal(_logits(model), expected)

    def halve_by_hand(module, args, kwargs):  # the residual stream entering the last layer
        if args:
            return (args[0] * 0.5, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] * 0.5}

    expected = _hand_hooked(model, lay.layers[-1], halve_by_hand, with_kwargs=True)
    with hooks(lay, layer_in=lambda layer, h: h * 0.5, layers=[-1]):
        assert torch.equal(_logits(model), expected)
    with hooks(lay, layer_out=lambda layer, h: h * 0.5, layers=[0]):  # layer 0's output
        halved = _logits(model)
    with hooks(lay, layer_in=lambda layer, h: h * 0.5, layers=[1]):  # is layer 1's input
        assert torch.equal(halved, _logits(model))
    assert _n_hooks(model) == 0


def test_capture_calls_and_run_to_last_layer(setup):
    model, lay = setup
    batch = Batch(IDS, MASK, *(torch.zeros(0, dtype=torch.long),) * 3, None, 2)
    capture = CaptureCalls(lay.n_layers, offload=True)
    with hooks(lay, layer_in=capture):
        last = run_to_last_layer(model, lay, batch)
    assert all(c is not None and c.hidden.device.type == "cpu" for c in capture.calls)
    # replaying the last layer from its recorded call gives the same output
    call = capture.calls[-1]
    with torch.no_grad():
        if call.hidden_in_kwargs:
            out = lay.layers[-1](*call.args, hidden_states=call.hidden, **call.kwargs)
        else:
            out = lay.layers[-1](call.hidden, *call.args, **call.kwargs)
    out = out[0] if isinstance(out, (tuple, list)) else out
    assert torch.equal(out, last)
    assert _n_hooks(model) == 0


def test_hooks_act_only_in_the_owning_thread(setup):
    model, lay = setup
    clean = _logits(model)
    calls = []

    def zero_all(layer, heads):
        calls.append((threading.get_ident(), layer))
        return torch.zeros_like(heads)

    elsewhere = []
    with hooks(lay, heads=zero_all, layer_in=lambda layer, h: h * 0.0):
        thread = threading.Thread(target=lambda: elsewhere.append(_logits(model)))
        thread.start()
        thread.join()
        here = _logits(model)
    assert torch.equal(elsewhere[0], clean)  # untouched
    assert not torch.equal(here, clean)
    assert calls == [(threading.get_ident(), i) for i in range(lay.n_layers)]


def test_hooks_are_removed_after_an_exception(setup):
    model, lay = setup
    with pytest.raises(KeyError), hooks(lay, heads=lambda layer, x: None, layer_in=print):
        assert _n_hooks(model) == 2 * lay.n_layers
        raise KeyError("inside the block")
    assert _n_hooks(model) == 0

    def fails(layer, x):
        raise RuntimeError("in the strategy")

    with pytest.raises(RuntimeError, match="in the strategy"), hooks(lay, heads=fails):
        _logits(model)
    assert _n_hooks(model) == 0

    class Wrong:  # a form the site cannot give: refused when installing, nothing left behind
        form = "call"

        def __call__(self, layer, x):
            return None

    with pytest.raises(ValueError, match="form"), hooks(lay, heads=print, layer_out=Wrong()):
        pass
    assert _n_hooks(model) == 0


_REGISTRATIONS = {
    "register_forward_pre_hook",
    "register_forward_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "register_backward_hook",
    "register_hook",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_hook",
}


def test_no_hook_is_registered_outside_modeling():
    package = Path(__file__).resolve().parents[1] / "headwidget"
    found = []
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "modeling":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "attr", getattr(node, "id", None))
            if name in _REGISTRATIONS:
                found.append(f"{path.relative_to(package)}:{node.lineno} {name}")
    assert not found, f"register hooks with headwidget.modeling.hooks.hooks: {found}"
