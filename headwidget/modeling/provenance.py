"""What a result records about the model and the run that made it (``meta``): the model's name,
class and type, package versions, device, dtype and time.

>>> sorted(model_provenance(model, layout, device))  # doctest: +SKIP
['architecture', 'created', 'device', 'dtype', 'model', 'model_type', 'versions']
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import torch
from torch import nn

from ..version import __version__
from .inputs import model_dtype

__all__ = ["model_provenance"]


def model_provenance(model: nn.Module, layout: Any, device: torch.device) -> dict[str, Any]:
    """``model``'s provenance for ``meta`` (see the module doc); ``layout`` names the
    architecture when the model has no config."""
    import transformers

    config = getattr(model, "config", None)
    return {
        "model": getattr(config, "name_or_path", "") or type(model).__name__,
        "architecture": type(model).__name__,
        "model_type": getattr(config, "model_type", layout.name),
        "versions": {
            "headwidget": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "dtype": str(model_dtype(model)).replace("torch.", ""),
    }
