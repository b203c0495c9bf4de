"""How sure each map is (HeadScores.sem, reliability, p_values, significant, examples_needed,
sem_source; headwidget.scores.uncertainty): calibration on heavy-tailed synthetic effects,
agreement with direct computations, NaN handling and the file format's record of them."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from headwidget import HeadScores
from headwidget.scores import FORMAT_NAME, FORMAT_VERSION
from headwidget.scores import uncertainty as U

ROOT = Path(__file__).resolve().parents[1]


def scores_of(effects: dict[str, np.ndarray], tasks: list[str] | None = None, **kw) -> HeadScores:
    tasks = tasks or list(effects)
    shape = next(iter(effects.values())).shape[:2]
    values = np.stack(
        [effects[t].mean(-1) if t in effects else np.zeros(shape) for t in tasks]
    ).astype(np.float32)
    return HeadScores(values, tasks, effects=effects, **kw)


def sparse_map(rng: np.random.Generator, shape=(30, 9), share=0.1, size=1.0) -> np.ndarray:
    return np.where(rng.random(shape) < share, rng.uniform(0.5, 1.5, shape), 0.0) * size


def heavy_null(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Symmetric heavy-tailed per-example noise: Student-t with 2 degrees of freedom, or the
    observed shape (a quarter of the examples drop by 10-11.5, the rest by under 0.35) with
    random signs, or an accuracy-like drop in {-1, 0, 1} (ties everywhere)."""
    if kind == "t2":
        return rng.standard_t(2, size=shape)
    if kind == "mixture":
        big = rng.random(shape) < 0.25
        size = np.where(big, rng.uniform(10, 11.5, shape), rng.uniform(0, 0.35, shape))
        return size * rng.choice([-1.0, 1.0], shape)
    return rng.choice([-1.0, 0.0, 1.0], size=shape, p=[0.1, 0.8, 0.1])


# -- significance ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["t2", "mixture", "accuracy"])
def test_significant_keeps_false_positives_at_alpha_and_finds_true_heads(kind):
    """5 tasks x 2,000 heads x 40 examples; 40 heads per task have a true effect, the rest
    drops symmetric about 0 (no effect) from a heavy-tailed distribution. The null
    heads' p-values are calibrated (at most alpha of them below alpha, within 3 binomial
    standard errors over 9,800 null heads), the false discovery proportion of significant()
    stays near alpha, and (nearly) all true heads are found."""
    rng = np.random.default_rng({"t2": 1, "mixture": 2, "accuracy": 3}[kind])
    shape, n, n_true, alpha = (40, 50), 40, 40, 0.05
    effects, truth = {}, {}
    for t in range(5):
        noise = heavy_null(rng, (*shape, n), kind)
        true = np.zeros(shape, bool)
        true.ravel()[rng.choice(true.size, n_true, replace=False)] = True
        if kind == "accuracy":  # a true head turns most examples' answers wrong
            hit = rng.random((*shape, n)) < 0.6
            noise = np.where(true[..., None] & hit, 1.0, noise)
        elif kind == "mixture":  # the same drops, but 90% of them are drops (positive)
            drops = np.abs(noise) * np.where(rng.random(noise.shape) < 0.9, 1.0, -1.0)
            noise = np.where(true[..., None], drops, noise)
        else:
            noise = noise + true[..., None] * 3.0
        effects[f"task {t}"], truth[f"task {t}"] = noise.astype(np.float32), true
    scores = scores_of(effects)
    truth_all = np.stack([truth[t] for t in scores.tasks])
    p = scores.p_values()
    null_p = p[~truth_all]
    bound = alpha + 3 * math.sqrt(alpha * (1 - alpha) / null_p.size)
    assert (null_p <= alpha).mean() <= bound
    assert (null_p <= 0.01).mean() <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / null_p.size)

    found = scores.significant(alpha)
    assert found[~truth_all].mean() <= alpha  # false-positive rate among null heads
    false_share = [
        (found[t] & ~truth_all[t]).sum() / max(found[t].sum(), 1) for t in range(len(scores.tasks))
    ]
    assert np.mean(false_share) <= alpha + 0.05  # FDR: alpha, within 5 tasks' sampling error
    assert found[truth_all].mean() >= 0.9
    assert (scores.significant(alpha, fdr="by") <= found).all()  # BY is the stricter


def test_p_values_are_the_exact_sign_flip_distribution_of_the_signed_ranks():
    """Every cell (continuous, ties, zeros, 1-11 examples) against brute-force enumeration
    of all 2^n sign flips of its midranks."""
    rng = np.random.default_rng(0)

    def brute(x: np.ndarray) -> float:
        x = x[x != 0]
        if x.size == 0:
            return 1.0
        a = np.abs(x)
        r = np.empty(a.size)
        r[np.argsort(a)] = np.arange(1, a.size + 1)
        for value in np.unique(a):
            r[a == value] = r[a == value].mean()
        w = r[x > 0].sum()
        every = np.array([r @ np.array(s) for s in itertools.product([0, 1], repeat=a.size)])
        return min(1.0, 2 * min((every <= w + 1e-9).mean(), (every >= w - 1e-9).mean()))

    for n in range(1, 12):
        cells = np.concatenate(
            [rng.normal(size=(8, n)), rng.integers(-2, 3, size=(8, n)).astype(float)]
        )
        p = U.signed_rank_p(cells.reshape(4, 4, n).astype(np.float32)).ravel()
        assert p == pytest.approx([brute(c) for c in cells.astype(np.float32)], abs=1e-12)
    # one example's drop of 10 and eleven small positive ones: 2 / 2^12, whatever the sizes
    drops = np.array([10.5, 11.0, 11.5, 0.3, 0.2, 0.1, 0.25, 0.15, 0.05, 0.33, 0.31, 0.22])
    assert U.signed_rank_p(drops[None, None]).item() == 2 / 2**12


def test_fdr_reject_is_benjamini_hochberg():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.001])
    # sorted 0.001 0.01 0.03 0.04 0.2 vs 0.01 0.02 0.03 0.04 0.05 (m = 5 finite)
    assert U.fdr_reject(p, 0.05).tolist() == [True, True, True, False, False, True]
    # BY: thresholds / (1 + 1/2 + ... + 1/5) = 0.0044, 0.0088, ...: only 0.001 passes
    assert U.fdr_reject(p, 0.05, "by").tolist() == [False, False, False, False, False, True]
    assert not U.fdr_reject(np.full(3, np.nan)).any()
    with pytest.raises(ValueError, match="alpha"):
        U.fdr_reject(p, 1.5)


# -- standard error -------------------------------------------------------------------------


def test_sem_is_the_sample_standard_deviation_over_root_n():
    rng = np.random.default_rng(0)
    a = rng.standard_t(3, size=(3, 4, 9)).astype(np.float32)
    a[1, 2, 5] = np.nan  # a cell never scored in one example
    scores = scores_of({"a": a, "one": rng.normal(size=(3, 4, 1))}, ["a", "none", "one"])
    direct = a.astype(np.float64).std(axis=2, ddof=1) / 3.0
    direct[1, 2] = np.nan
    np.testing.assert_allclose(scores.sem[0], direct, rtol=1e-12)
    assert np.isnan(scores.sem[1]).all() and np.isnan(scores.sem[2]).all()  # none; 1 example
    assert scores.sem.shape == scores.shape


def test_sem_source_tells_exact_drops_from_attribution_estimates():
    rng = np.random.default_rng(0)
    effects = rng.normal(size=(2, 3, 5)).astype(np.float32)
    effects[1, 2] = np.nan
    exact = np.zeros((2, 2, 3), bool)
    exact[0, 0, :2] = True
    scores = scores_of({"a": effects}, ["a", "b"], method="attribution", exact=exact)
    assert scores.sem_source[0].tolist() == [
        ["exact", "exact", "estimate"],
        ["estimate", "estimate", "none"],
    ]
    assert (scores.sem_source[1] == "none").all()
    assert (scores_of({"a": effects}).sem_source[0][:1] == "exact").all()  # all exact


# -- reliability ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [6, 7, 40])
def test_reliability_of_identical_halves_is_one(n):
    """Every example shows the same map (scaled): any two halves agree exactly."""
    rng = np.random.default_rng(n)
    true = rng.normal(size=(12, 8, 1))
    scale = rng.uniform(0.5, 2.0, size=n)
    assert scores_of({"t": true * scale}).reliability()["t"] == pytest.approx(1.0, abs=1e-9)


def test_reliability_of_independent_noise_is_about_zero():
    """Pure noise over C = 1,200 cells: the split-half estimate's sampling sd is about
    sqrt(2 / C) = 0.04 (the F distribution of between- vs within-cell variance); each draw
    stays within 0.15 (3.7 sd) of 0 and the mean of 10 draws within 0.05."""
    rng = np.random.default_rng(7)
    values = [
        U.split_half(rng.standard_t(3, size=(40, 30, n)), seed=i).reliability
        for i, n in enumerate([8, 9, 12, 16, 20, 24, 30, 40, 50, 64])
    ]
    assert max(abs(v) for v in values) < 0.15
    assert abs(np.mean(values)) < 0.05


def test_reliability_is_stable_across_seeds_on_a_realistic_map():
    """The demo model's 30 x 9 heads, 40 examples, a sparse map under heavy-tailed noise with
    a quarter of the examples carrying most of the effect: 10 seeds agree to ±0.02."""
    rng = np.random.default_rng(3)
    n = 40
    carriers = 1 + 4 * (rng.random(n) < 0.25)
    effects = sparse_map(rng, size=1.0)[..., None] * carriers + rng.standard_t(2, (30, 9, n))
    scores = scores_of({"t": effects})
    values = [scores.reliability(seed)["t"] for seed in range(10)]
    assert 0.3 < np.mean(values) < 0.95  # neither noise nor trivially reliable
    assert max(values) - min(values) <= 0.02
    assert scores.reliability(5) == scores.reliability(5)  # seeded: the same twice


def test_reliability_uses_only_cells_finite_in_every_example():
    rng = np.random.default_rng(0)
    effects = sparse_map(rng, size=2.0)[..., None] + rng.normal(size=(30, 9, 20))
    holed = effects.copy()
    holed[:5] = np.nan  # five layers never scored
    holed[7, 3, 4] = np.nan  # one cell missing one example
    kept = np.isfinite(holed).all(axis=2)
    direct = U.split_half(effects[kept][None], seed=U.task_seed(0, "t"))
    assert scores_of({"t": holed}).reliability()["t"] == pytest.approx(direct.reliability)
    assert U.split_half(holed).n_cells == kept.sum()


def test_nan_where_there_is_nothing_to_measure():
    rng = np.random.default_rng(0)
    effects = {"three": rng.normal(size=(3, 4, 3)), "four": rng.normal(size=(3, 4, 4))}
    effects["flat"] = np.ones((3, 4, 6))
    scores = scores_of(effects, ["none", "three", "four", "flat"])
    reliability = scores.reliability()
    assert math.isnan(reliability["none"]) and math.isnan(reliability["three"])
    assert math.isfinite(reliability["four"]) and math.isnan(reliability["flat"])
    needed = scores.examples_needed()
    assert needed["none"] is None and needed["three"] is None and needed["flat"] is None
    assert np.isnan(scores.p_values()[0]).all() and not scores.significant()[0].any()
    assert (scores.p_values()[3] == 2 / 2**6).all()  # 6 equal drops: as strong as 6 signs


# -- examples needed ------------------------------------------------------------------------


def test_examples_needed_is_the_spearman_brown_projection():
    for r, n, target in [(0.5, 16, 0.85), (0.2, 8, 0.9), (0.95, 100, 0.9), (0.6, 20, 0.9)]:
        needed = U.examples_needed(r, n, target)
        assert U.spearman_brown(r, needed / n) >= target - 1e-12
        if needed > 1:
            assert U.spearman_brown(r, (needed - 1) / n) < target
    assert U.examples_needed(0.6, 20, 0.9) == 120  # 20 * 0.9 * 0.4 / (0.6 * 0.1), exactly
    assert U.examples_needed(0.0, 20) is None and U.examples_needed(math.nan, 20) is None
    with pytest.raises(ValueError, match="target"):
        U.examples_needed(0.5, 20, 1.0)


def test_examples_needed_predicts_the_measured_reliability():
    """Measured on 16 of 160 examples, the projection of how many reach 0.85; the map averaged
    over that many of the 160 is then that reliable (within 0.04: the spread of the 16-example
    measurement over 20 subsets, and of the check)."""
    rng = np.random.default_rng(11)
    total = 160
    effects = sparse_map(rng, (40, 20), share=0.2, size=0.7)[..., None] + rng.normal(
        size=(40, 20, total)
    )
    small = [
        U.split_half(effects[..., rng.choice(total, 16, replace=False)], rng).reliability
        for _ in range(20)
    ]
    r16 = float(np.mean(small))
    needed = U.examples_needed(r16, 16, 0.85)
    assert 32 < needed < total
    at_needed = np.mean(
        [
            U.split_half(effects[..., rng.choice(total, needed, replace=False)], rng).reliability
            for _ in range(10)
        ]
    )
    assert at_needed == pytest.approx(0.85, abs=0.04)
    scores = scores_of({"t": effects[..., :16]})
    r = scores.reliability()["t"]
    assert scores.examples_needed(0.85)["t"] == U.examples_needed(r, 16, 0.85)


# -- the file -------------------------------------------------------------------------------


def test_save_load_keeps_the_uncertainty_record_and_the_results(tmp_path):
    rng = np.random.default_rng(0)
    effects = {"a": (sparse_map(rng)[..., None] + rng.normal(size=(30, 9, 12))).astype(np.float32)}
    scores = scores_of(effects, ["a", "b"], meta={"model": "m"})
    assert scores.meta["uncertainty"] == U.SETTINGS
    loaded = HeadScores.load(scores.save(tmp_path / "s.npz"))
    assert loaded.meta["uncertainty"] == U.SETTINGS and loaded.meta["model"] == "m"
    assert loaded.meta["uncertainty"]["reliability"]["seed"] == 0
    assert loaded.meta["uncertainty"]["test"]["alpha"] == 0.05
    np.testing.assert_array_equal(loaded.sem, scores.sem)
    assert loaded.reliability() == scores.reliability()
    np.testing.assert_array_equal(loaded.significant(), scores.significant())
    with np.load(tmp_path / "s.npz") as archive:
        header = json.loads(archive["header"].tobytes())
    assert header["version"] == FORMAT_VERSION == 4
    # without per-example effects there is nothing to record
    plain = HeadScores(np.zeros((1, 2, 2), np.float32), ["x"], meta={"model": "m"})
    assert HeadScores.load(plain.save(tmp_path / "p.npz")).meta == {"model": "m"}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_files_still_load(tmp_path, version):
    rng = np.random.default_rng(version)
    values = rng.normal(size=(1, 2, 3)).astype(np.float32)
    effects = rng.normal(size=(2, 3, 5)).astype(np.float32)
    header = {"format": FORMAT_NAME, "version": version, "tasks": ["a"], "meta": {"model": "old"}}
    arrays = {"values": values}
    if version == 3:
        arrays["effects_0"] = effects
    path = tmp_path / f"v{version}.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    loaded = HeadScores.load(path)
    np.testing.assert_array_equal(loaded.values, values)
    assert loaded.meta["model"] == "old"
    if version < 3:
        assert loaded.effects == {} and loaded.meta == {"model": "old"}
        assert np.isnan(loaded.sem).all() and math.isnan(loaded.reliability()["a"])
    else:  # a version 3 file's effects give the uncertainty at once
        np.testing.assert_array_equal(loaded.effects["a"], effects)
        np.testing.assert_allclose(loaded.sem[0], effects.std(-1, ddof=1) / math.sqrt(5))
        assert loaded.meta["uncertainty"] == U.SETTINGS


# -- the reliability curve script -----------------------------------------------------------


def test_reliability_curve_script_on_a_synthetic_file(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "reliability_curve", ROOT / "scripts" / "reliability_curve.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "reliability_curve", module)
    spec.loader.exec_module(module)
    module.main(["--synthetic", str(tmp_path / "syn.npz"), "--subsets", "10"])
    printed = capsys.readouterr().out
    assert "strong: reliability measured" in printed and "weak:" in printed
    rows = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    strong = [(int(n), float(measured), float(sd), float(projected)) for n, measured, sd,
              projected, _ in rows[:6]]  # fmt: skip
    assert [n for n, *_ in strong] == [4, 8, 16, 32, 64, 128]
    assert strong[-1][2] == 0.0  # all 128 examples: one measurement, the task's own
    assert strong[-1][1] == pytest.approx(
        U.split_half(HeadScores.load(tmp_path / "syn.npz").effects["strong"], 0).reliability,
        abs=0.01,
    )
    for n, _, _, projected in strong:  # the projection is Spearman-Brown from n = 4
        assert projected == pytest.approx(U.spearman_brown(strong[0][1], n / 4), abs=2e-3)
    measured = [m for _, m, _, _ in strong]
    assert measured == sorted(measured)  # more examples, more reliable


def test_measured_reliability_curve_follows_spearman_brown():
    """Where its assumption holds (independent examples, noise of one size), the curve
    measured by subsampling follows the projection from 8 examples to 256, within 0.05
    (the n = 8 point is a mean over 40 subsets, its standard error about 0.015)."""
    spec = importlib.util.spec_from_file_location(
        "reliability_curve", ROOT / "scripts" / "reliability_curve.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reliability_curve", module)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(4)
    effects = sparse_map(rng, (30, 9), share=0.2, size=0.8)[..., None] + rng.normal(
        size=(30, 9, 256)
    )
    points = module.curve(effects, smallest=8, subsets=40, seed=1)
    assert [p.n for p in points] == [8, 16, 32, 64, 128, 256]
    assert points[0].measured < 0.5 < points[-1].measured
    for p in points:
        assert p.projected == pytest.approx(p.measured, abs=0.05)
