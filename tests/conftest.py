"""Shared pytest fixtures: tiny offline models and tokenizers (see tests/tiny_models.py), and the
real demo model."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_models import tiny_model, word_tokenizer

# The test models are tiny: extra threads only add contention on a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def word_tok():
    """Word-level tokenizer with BOS and a pad token (vocabulary: tiny_models.WORDS)."""
    return word_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama(word_tok):
    """A 2-layer, 4-head (2 key/value heads) random Llama matching ``word_tok``."""
    return tiny_model("llama", vocab_size=len(word_tok))


@pytest.fixture(scope="module")
def demo():
    """The real demo model and its tokenizer (:func:`headwidget.demo.load_demo_model`); the
    test is skipped where the model is not installed, except on CI, where that fails it."""
    from headwidget.demo import DemoModelMissingError, load_demo_model

    try:
        return load_demo_model()
    except DemoModelMissingError as err:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(err))
