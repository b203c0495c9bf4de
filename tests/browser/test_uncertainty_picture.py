"""scripts/uncertainty_picture.py, tried on synthetic scores with per-example effects (the README
picture itself waits for the shipped demo maps to be recomputed with them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from headwidget import HeadScores

pytestmark = pytest.mark.browser

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script():
    sys.path.insert(0, str(SCRIPTS))  # it imports grid_page from beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "uncertainty_picture", SCRIPTS / "uncertainty_picture.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def test_the_picture_shows_the_interval_of_a_hovered_head(browser, tmp_path):
    script = load_script()
    scores = script.synthetic_scores()
    reliability = scores.reliability()
    assert min(reliability.values()) < 0.7 < max(reliability.values())  # both kinds of title
    out = tmp_path / "uncertainty.png"
    text = script.draw(browser, scores, out)
    task, layer, head = script.hovered_head(scores, None)
    assert text.splitlines()[:2] == [task, f"Layer {layer} · Head {head}"]
    assert "± " in text and "(95 %)" in text
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") >= 900


def test_it_refuses_scores_without_effects_and_synthetic_pictures_in_docs(tmp_path, capsys):
    script = load_script()
    with pytest.raises(SystemExit, match="no per-example effects"):
        script.check_effects(HeadScores(np.ones((1, 2, 2)), ["a"]))
    with pytest.raises(SystemExit):
        script.main(["--synthetic", "--out", str(script.DOCS / "uncertainty.png")])
    assert "does not go into docs/" in capsys.readouterr().err
