"""The architecture table (headwidget/modeling/architectures.py) against tiny models built from
transformers configs: every path of every entry names the module it says it does."""

from __future__ import annotations

import doctest

import pytest
import torch
from tiny_models import DETECTED_FAMILIES, FAMILIES, tiny_config, tiny_model

from headwidget.methods.projection import PROJECTION_ARCHITECTURES
from headwidget.modeling import architectures
from headwidget.modeling.adapters import SUPPORTED_ARCHITECTURES
from headwidget.modeling.architectures import ARCHITECTURES

BUILT_IN = [family for family in FAMILIES if family not in DETECTED_FAMILIES]


def is_norm(module: torch.nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


def test_the_doctests_hold():
    assert doctest.testmod(architectures).failed == 0


def test_every_entry_has_a_tiny_model_and_the_consumers_read_the_table():
    assert {tiny_config(family).model_type for family in BUILT_IN} == set(ARCHITECTURES)
    assert tuple(sorted(ARCHITECTURES)) == SUPPORTED_ARCHITECTURES
    assert (
        tuple(sorted(name for name, arch in ARCHITECTURES.items() if arch.projection))
        == PROJECTION_ARCHITECTURES
    )
    for name in PROJECTION_ARCHITECTURES:  # projection normalizes a source as attention does
        assert ARCHITECTURES[name].attention_norms, name


@pytest.mark.parametrize("family", BUILT_IN)
def test_every_path_names_its_module(family):
    model = tiny_model(family, n_layers=2)
    arch = ARCHITECTURES[model.config.model_type]
    layers = model.get_submodule(arch.layers)
    assert isinstance(layers, torch.nn.ModuleList) and len(layers) >= 2
    assert is_norm(model.get_submodule(arch.final_norm))
    if arch.after_norm:  # (OPT's project_out is None in most checkpoints)
        parent, _, name = arch.after_norm.rpartition(".")
        assert hasattr(model.get_submodule(parent), name)
    for layer in layers:
        attention = layer.get_submodule(arch.attention)
        assert "attention" in type(attention).__name__.lower()
        assert arch.out_proj.startswith(arch.attention + ".")
        assert isinstance(layer.get_submodule(arch.out_proj), torch.nn.Module)
        norm = arch.attention_norm_in(layer)
        assert (norm is None) == (not arch.attention_norms)
        assert norm is None or is_norm(norm)
        if arch.projection:
            weights = arch.projection
            for path in (weights.value, weights.mlp_norm, weights.mlp):
                layer.get_submodule(path)
            for path in (weights.post_attn_norm, weights.post_mlp_norm):
                assert path is None or is_norm(layer.get_submodule(path))
            assert weights.value.startswith(arch.attention + ".")


@pytest.mark.parametrize("family", BUILT_IN)
def test_the_attention_reads_its_norms_output(family):
    """The hidden state the attention module is called with (its query, key and value input) is
    the attention norm's output, or the layer's own input where there is no norm."""
    model = tiny_model(family, n_layers=2)
    arch = ARCHITECTURES[model.config.model_type]
    layer = model.get_submodule(arch.layers)[1]
    seen: dict[str, torch.Tensor] = {}

    def first_tensor(args, kwargs) -> torch.Tensor:
        return args[0] if args else kwargs["hidden_states"]

    def keep(name):
        def hook(module, args, kwargs, *output):
            seen[name] = output[0] if output else first_tensor(args, kwargs)

        return hook

    norm = arch.attention_norm_in(layer)
    handles = [
        layer.get_submodule(arch.attention).register_forward_pre_hook(
            keep("attention input"), with_kwargs=True
        ),
        layer.register_forward_pre_hook(keep("layer input"), with_kwargs=True),
    ]
    if norm is not None:
        handles.append(norm.register_forward_hook(keep("norm output"), with_kwargs=True))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([[4, 5, 6, 7]]), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    expected = seen["layer input" if norm is None else "norm output"]
    torch.testing.assert_close(seen["attention input"], expected, rtol=0, atol=0)
