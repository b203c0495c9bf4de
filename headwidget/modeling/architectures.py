"""The built-in architectures: where each part of a Hugging Face causal LM lives, in one table.

One :class:`Architecture` per ``config.model_type`` in :data:`ARCHITECTURES`. Every consumer
reads its fields from here: :func:`headwidget.modeling.adapters.describe_model` (the decoder
layers, the attention output projection, the final norm) and ``method="projection"`` (the
:class:`ProjectionWeights` it reads a head's OV circuit from). Adding a model is one entry; a
feature that needs another part of the model adds a field, filled in for every entry.

Paths are dotted attribute paths: from the model (``layers``, ``final_norm``, ``after_norm``)
or from one decoder layer (the others).

>>> llama = ARCHITECTURES["llama"]
>>> llama.layers, llama.attention, llama.out_proj
('model.layers', 'self_attn', 'self_attn.o_proj')
>>> ARCHITECTURES["gpt2"].attention_norms, ARCHITECTURES["gpt2"].projection.value
(('ln_1',), 'attn.c_attn')
>>> ARCHITECTURES["mixtral"].projection is None  # method="projection" cannot read it
True
>>> ARCHITECTURES["gpt2"].inputs.query, ARCHITECTURES["gpt2"].inputs.layout
('attn.c_attn', 'concat')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

__all__ = ["ARCHITECTURES", "AttentionInputs", "Architecture", "ProjectionWeights"]


@dataclass(frozen=True)
class ProjectionWeights:
    """What ``method="projection"`` reads (besides the shared fields of the
    :class:`Architecture`, whose attention norm it applies to a source's residual).

    Attributes:
        value: path inside a layer to the module computing the values from the attention
            norm's output: ``v_proj`` or a fused projection (see ``value_slice``).
        value_slice: which part of ``value``'s output the values are: ``"all"``; ``"gpt2"``,
            the last third of ``c_attn`` (a Conv1D, whose output projection is stored
            transposed); ``"phi3"``, what follows the query and key heads of ``qkv_proj``.
        mlp_norm: path inside a layer to the norm in front of the MLP.
        mlp: path inside a layer to the MLP.
        embed_scale: the model multiplies its input embeddings by ``sqrt(hidden)`` itself
            (outside its embedding module).
        post_attn_norm: path inside a layer to a norm on the attention's output (Gemma-2/3).
        post_mlp_norm: path inside a layer to a norm on the MLP's output (Gemma-2/3).
    """

    value: str
    value_slice: str
    mlp_norm: str
    mlp: str
    embed_scale: bool = False
    post_attn_norm: str | None = None
    post_mlp_norm: str | None = None


@dataclass(frozen=True)
class AttentionInputs:
    """Where a layer's attention computes its query, key and value from the attention norm's
    output: what :func:`headwidget.trace_paths` patches one channel of.

    Attributes:
        query, key, value: paths inside a layer to the modules computing them (one path for a
            fused projection). Each is called with the attention norm's output and is affine
            in it (a ``Linear`` or ``Conv1D``).
        layout: how the outputs are laid out, ``head_dim`` wide per slice: ``"separate"``
            (three modules, each head-major: one slice per query head, or per key/value
            head), ``"concat"`` (one module: every query head, then every key head, then every
            value head: GPT-2's ``c_attn``, Phi-3's ``qkv_proj``, multi-query Falcon) or
            ``"grouped"`` (one module, per key/value group its query heads, then its key,
            then its value: GPT-NeoX and BLOOM, where a group is one head, and Falcon).
        out_norm: path inside a layer to a norm on the attention's output before the residual
            stream adds it (Gemma-2/3, OLMo-2), if there is one.
    """

    query: str
    key: str
    value: str
    layout: str = "separate"
    out_norm: str | None = None


@dataclass(frozen=True)
class Architecture:
    """Where the parts of one architecture's Hugging Face causal LM are.

    Attributes:
        layers: path from the model to the ``ModuleList`` of decoder layers (some models run
            only the first ``config.num_hidden_layers`` of them).
        attention: path inside a layer to its attention module.
        attention_norms: path inside a layer to the norm whose output is the attention's
            input (what its query, key and value projections read): the first of these the
            layer has (Falcon's norm depends on its config); empty where the attention reads
            the residual stream itself (OLMo-2 normalizes after it). OPT applies it before
            the attention only when ``config.do_layer_norm_before`` (its default).
        out_proj: path inside a layer to the attention output projection, whose input is the
            per-head outputs concatenated head-major.
        final_norm: path from the model to the norm after the last layer.
        after_norm: path from the model to a module between the final norm and the LM head
            (OPT's ``project_out``, ``None`` in most checkpoints), if the architecture has one.
        projection: what ``method="projection"`` reads, for the architectures it supports.
        inputs: where the attention computes its query, key and value (path patching).
    """

    layers: str
    attention: str
    attention_norms: tuple[str, ...]
    out_proj: str
    final_norm: str
    after_norm: str | None = None
    projection: ProjectionWeights | None = None
    inputs: AttentionInputs | None = None

    def attention_norm_in(self, layer: Any) -> Any:
        """The attention norm module of one decoder layer (``None`` where there is none).

        Raises ``AttributeError`` when the layer has none of :attr:`attention_norms`.
        """
        if not self.attention_norms:
            return None
        for path in self.attention_norms:
            module = _at(layer, path)
            if module is not None:
                return module
        raise AttributeError(
            f"{type(layer).__name__} has no attention norm at {' or '.join(self.attention_norms)}"
        )


def _at(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part, None)
    return root


_LLAMA_INPUTS = AttentionInputs("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
_POST_NORM_INPUTS = replace(_LLAMA_INPUTS, out_norm="post_attention_layernorm")
_LLAMA_LIKE = Architecture(
    layers="model.layers",
    attention="self_attn",
    attention_norms=("input_layernorm",),
    out_proj="self_attn.o_proj",
    final_norm="model.norm",
    inputs=_LLAMA_INPUTS,
)
_LLAMA_VALUES = ProjectionWeights(
    value="self_attn.v_proj",
    value_slice="all",
    mlp_norm="post_attention_layernorm",
    mlp="mlp",
)
_LLAMA = replace(_LLAMA_LIKE, projection=_LLAMA_VALUES)
_GEMMA2_VALUES = replace(
    _LLAMA_VALUES,
    embed_scale=True,
    mlp_norm="pre_feedforward_layernorm",
    post_attn_norm="post_attention_layernorm",
    post_mlp_norm="post_feedforward_layernorm",
)
_FUSED = "self_attention.query_key_value"
_GPT_STYLE = Architecture(  # Falcon and BLOOM
    layers="transformer.h",
    attention="self_attention",
    # Falcon with new_decoder_architecture (two parallel norms) names it ln_attn
    attention_norms=("input_layernorm", "ln_attn"),
    out_proj="self_attention.dense",
    final_norm="transformer.ln_f",
    inputs=AttentionInputs(_FUSED, _FUSED, _FUSED, "grouped"),
)

_TABLE: dict[str, Architecture] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "mixtral": _LLAMA_LIKE,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": replace(_LLAMA, projection=replace(_LLAMA_VALUES, embed_scale=True)),
    "gemma2": replace(_LLAMA_LIKE, projection=_GEMMA2_VALUES, inputs=_POST_NORM_INPUTS),
    # its embedding module scales
    "gemma3_text": replace(
        _LLAMA_LIKE,
        projection=replace(_GEMMA2_VALUES, embed_scale=False),
        inputs=_POST_NORM_INPUTS,
    ),
    "phi3": replace(
        _LLAMA,
        projection=replace(_LLAMA_VALUES, value="self_attn.qkv_proj", value_slice="phi3"),
        inputs=AttentionInputs(*["self_attn.qkv_proj"] * 3, "concat"),
    ),
    "olmo": _LLAMA_LIKE,
    # norms after attention and MLP
    "olmo2": replace(_LLAMA_LIKE, attention_norms=(), inputs=_POST_NORM_INPUTS),
    "gpt2": Architecture(
        layers="transformer.h",
        attention="attn",
        attention_norms=("ln_1",),
        out_proj="attn.c_proj",
        final_norm="transformer.ln_f",
        projection=ProjectionWeights(
            value="attn.c_attn", value_slice="gpt2", mlp_norm="ln_2", mlp="mlp"
        ),
        inputs=AttentionInputs("attn.c_attn", "attn.c_attn", "attn.c_attn", "concat"),
    ),
    "gpt_neox": Architecture(
        layers="gpt_neox.layers",
        attention="attention",
        attention_norms=("input_layernorm",),
        out_proj="attention.dense",
        final_norm="gpt_neox.final_layer_norm",
        inputs=AttentionInputs(*["attention.query_key_value"] * 3, "grouped"),
    ),
    "gptj": Architecture(
        layers="transformer.h",
        attention="attn",
        attention_norms=("ln_1",),
        out_proj="attn.out_proj",
        final_norm="transformer.ln_f",
        inputs=AttentionInputs("attn.q_proj", "attn.k_proj", "attn.v_proj"),
    ),
    "opt": Architecture(
        layers="model.decoder.layers",
        attention="self_attn",
        attention_norms=("self_attn_layer_norm",),
        out_proj="self_attn.out_proj",
        final_norm="model.decoder.final_layer_norm",
        after_norm="model.decoder.project_out",
        inputs=_LLAMA_INPUTS,
    ),
    "falcon": _GPT_STYLE,
    "bloom": _GPT_STYLE,
}

ARCHITECTURES: Mapping[str, Architecture] = MappingProxyType(_TABLE)
"""``config.model_type`` -> its :class:`Architecture` (read-only)."""
