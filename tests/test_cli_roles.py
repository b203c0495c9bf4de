"""``headwidget roles`` and ``headwidget show --roles`` on a tiny saved model."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_model, word_tokenizer

from headwidget import HeadScores, detect_heads
from headwidget.cli import main
from headwidget.cli.roles import ROLE_NAMES
from headwidget.methods.patterns import BUILTIN_ROLES


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("roles")
    tok = word_tokenizer()
    tiny_model("llama", vocab_size=len(tok), n_layers=3).save_pretrained(base / "model")
    tok.save_pretrained(base / "model")
    tiny_model("llama", vocab_size=len(tok), n_layers=2).save_pretrained(base / "other")
    tok.save_pretrained(base / "other")
    return base


def test_roles_equals_detect_heads_and_show_lists_the_roles(folder, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert tuple(BUILTIN_ROLES) == ROLE_NAMES
    out = tmp_path / "roles.npz"
    argv = ["roles", str(folder / "model"), "-o", str(out), "--device", "cpu", "-q"]
    assert main([*argv, "--n-sequences", "3", "--seq-len", "10", "--seed", "2"]) == 0
    model = AutoModelForCausalLM.from_pretrained(folder / "model", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    direct = detect_heads(model, tokenizer, n_sequences=3, seq_len=10, seed=2, progress=False)
    saved = HeadScores.load(out)
    np.testing.assert_allclose(saved.values, direct.values, atol=1e-6)
    assert saved.tasks == list(ROLE_NAMES) and saved.meta["model"] == str(folder / "model")

    some = tmp_path / "some.npz"
    assert main([*argv[:3], str(some), "-q", "--roles", "induction", "previous-token",
                 "--seq-len", "10", "--error-measure", "abs", "--rows", "all"]) == 0  # fmt: skip
    assert HeadScores.load(some).tasks == ["induction", "previous token"]
    assert HeadScores.load(some).meta["error_measure"] == "abs"

    # a task map of the same model: its top heads again, with their roles
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    HeadScores(values, ["a", "b"]).save(tmp_path / "scores.npz")
    capsys.readouterr()
    show = ["show", str(tmp_path / "scores.npz"), "--top", "2", "--roles", str(out)]
    assert main([*show, "--role-threshold", "0"]) == 0
    printed = capsys.readouterr().out
    assert "roles of the top heads" in printed and "attention share >= 0" in printed
    top_line = [line for line in printed.splitlines() if line.startswith("    1. L2H3")][-1]
    assert all(role in top_line for role in ROLE_NAMES)  # threshold 0: every role
    assert main([*show, "--role-threshold", "1.01"]) == 0
    assert printed.count("L2H3") == 4 and "L2H3  +23  -" in capsys.readouterr().out

    other = tmp_path / "other.npz"
    assert main(["roles", str(folder / "other"), "-o", str(other), "-q", "--seq-len", "8"]) == 0
    assert main(["show", str(tmp_path / "scores.npz"), "--roles", str(other)]) == 1
    assert "not the same model" in capsys.readouterr().err


def test_roles_usage_errors(folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["roles", str(folder / "model"), "-o", str(tmp_path / "r.npz"), "--roles", "sink"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert main(["roles", str(folder / "model"), "-o", str(tmp_path / "r.txt")]) == 2
    assert main(["roles", str(folder / "model"), "-o", str(tmp_path / "r.npz"), "-q"]) == 1
    assert "exceed the model's context" in capsys.readouterr().err  # 65 tokens > 64


def test_show_html_and_png_draw_the_role_glyphs(tmp_path, capsys):
    import base64
    import json
    import re
    import xml.etree.ElementTree as ET

    values = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    HeadScores(values, ["a", "b"]).save(tmp_path / "scores.npz")
    roles = np.full((2, 3, 4), 0.1, np.float32)
    roles[0, 1, 2], roles[1, 2, 3] = 0.9, 0.5
    HeadScores(roles, ["induction", "previous token"], meta={"units": "attention share"}).save(
        tmp_path / "roles.npz"
    )
    show = ["show", str(tmp_path / "scores.npz"), "--roles", str(tmp_path / "roles.npz")]
    page, figure = tmp_path / "page.html", tmp_path / "figure.svg"
    assert main([*show, "--html", str(page), "--png", str(figure)]) == 0
    text = page.read_text(encoding="utf-8")
    state = json.loads(re.search(r'id="headwidget-state">(.*?)</script>', text, re.S).group(1))
    assert state["role_info"]["names"] == ["induction", "previous token"]
    assert state["roles_shown"] == ["induction", "previous token"]
    raw = re.search(r'id="headwidget-role_values">(.*?)</script>', text, re.S).group(1)
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(raw), "<f4"), roles.ravel())
    glyphs = [
        el for el in ET.parse(figure).getroot().iter() if el.get("id", "").startswith("role-glyphs")
    ]
    assert len(glyphs) == 2  # one collection per panel
    assert "roles: attention share" in figure.read_text(encoding="utf-8")
    # --role-threshold moves the cut: 0.6 leaves only induction's head
    assert main([*show, "--role-threshold", "0.6", "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert json.loads(re.search(r'id="headwidget-state">(.*?)</script>', text, re.S).group(1))[
        "role_threshold"
    ] == pytest.approx(0.6)
    capsys.readouterr()
