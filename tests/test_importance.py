"""Importance sampling of the factor (engine/simulation/importance.py, engine/plan/rng.py TiltedDrawSource) and the
weighted statistics (engine/analytics/stats.py): unbiasedness against closed forms, the weights' law, exact
weighted quantiles, mergeability, and bad configs.

References are independent of the engine: the binomial-mixture tranche EL of tests/closed_form.py
(scipy quadrature), the normal and geometric laws the draws come from, and a plain-Python weighted
order statistic. Tolerances are multiples of standard errors computed from the data.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from builders import base_dict, holders_dict, homogeneous_config, make_config, with_importance
from closed_form import binomial_tranche_el, t_copula_horizon_pd
from engine import run
from engine.plan.calibrate import calibrate_thresholds
from engine.config import ConfigError, validate_config
from engine.plan.rng import DrawSource, TiltedDrawSource
from engine.analytics.stats import BIN_VALUES, Mass, Moments, PathWeights, StratumSums, loss_histogram, quantile_and_es
from kernels.draws import mixture_ppf

POINTS = [(0.0, 0.03), (0.03, 0.07), (0.07, 0.10), (0.10, 0.15), (0.15, 0.30), (0.30, 1.0)]


# ----------------------------------------------------------------------------- the sampling law


def _tilted(cfg, shift, hazard, plain_share=0.0):
    return TiltedDrawSource.for_config(with_importance(cfg, factor_shift=shift, plain_share=plain_share,
                                                       **({"burst_hazard": hazard} if hazard else {})))


@pytest.mark.parametrize("plain_share", [0.0, 0.1])
def test_weights_reproduce_normal_and_geometric_probabilities_of_the_plain_law(plain_share):
    """Under Q (factor level shifted by −2, burst hazard ×2) the weighted frequencies of events
    about Y_0 and the burst month equal their exact P-probabilities within 4 SE, and the weights
    average 1, alone (α = 0) and in the defensive mixture with a share α of plain paths, whose weights
    never exceed 1/α. A static factor (φ = 1) keeps the shift on Y_0 alone, so the weights' tails are
    light enough for the sample SE to be trusted."""
    d = base_dict()
    d["factor"]["persistence"] = 1.0
    cfg = make_config(d)
    h, T = cfg.factor.burst.monthly_hazard, cfg.run.months
    src = _tilted(cfg, -2.0, 0.04, plain_share)
    n = 40_000
    draws, w = src.draws(0, n), src.weights(0, n)
    y0, B = draws.eps[:, 0], draws.burst_month
    # The draws really are shifted: E_Q[Y_0] = (1 − α)·m.
    assert abs(y0.mean() + 2.0 * (1 - plain_share)) < 4 * y0.std() / math.sqrt(n)
    if plain_share:
        assert w.max() <= 1 / plain_share
    checks = [
        (np.ones(n, bool), 1.0),
        (y0 < -2.5, special.ndtr(-2.5)),
        (y0 < -1.0, special.ndtr(-1.0)),
        (B <= 6, 1.0 - (1.0 - h) ** 6),
        (B <= 24, 1.0 - (1.0 - h) ** 24),
        (B > T, (1.0 - h) ** T),
    ]
    for event, exact in checks:
        x = w * event
        se = x.std(ddof=1) / math.sqrt(n)
        assert abs(x.mean() - exact) < 4 * se, (x.mean(), exact, se)


def test_a_zero_shift_without_tilt_is_plain_monte_carlo_bit_for_bit():
    cfg = make_config()
    plain = DrawSource.for_config(cfg).draws(0, 5000)
    src = TiltedDrawSource.for_config(with_importance(cfg, factor_shift=0.0, burst_hazard=cfg.factor.burst.monthly_hazard,
                                                      plain_share=0.0, strata=1))
    tilted = src.draws(0, 5000)
    for a, b in zip(plain, tilted):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(src.weights(0, 5000), np.ones(5000))


def test_the_shift_moves_every_factor_level_by_m():
    """With persistence φ < 1 the shift direction keeps E[Y_t] = m for every t."""
    from kernels.factor import factor_path

    cfg = make_config()
    src = _tilted(cfg, -1.5, None, 0.0)
    d = src.draws(0, 20_000)
    phi = cfg.factor.persistence
    X = np.empty((d.eps.shape[0], d.eps.shape[1]))
    for i in range(d.eps.shape[0]):
        factor_path(d.eps[i], phi, math.sqrt(1 - phi * phi), cfg.run.months + 1, 0.0, X[i])
    se = X.std(axis=0, ddof=1) / math.sqrt(X.shape[0])
    assert np.all(np.abs(X.mean(axis=0) + 1.5) < 4.5 * se)


# ----------------------------------------------------------------------------- stratifying the factor


def _mixture_cdf(z, a, mu):
    return a * special.ndtr(z) + (1 - a) * special.ndtr(z - mu)


@pytest.mark.parametrize("a, mu", [(0.0, -2.5), (0.1, -2.5), (0.5, 3.0), (0.1, 0.0), (0.9, -0.3)])
def test_mixture_ppf_inverts_the_mixture_cdf(a, mu):
    """mixture_ppf against scipy's brentq on the mixture CDF (its complement above the median, so
    the reference keeps its digits), from v = 1e-12 to 1 − 1e-12."""
    from scipy.optimize import brentq

    tails = [1e-12, 1e-7, 1e-3]
    pairs = [(t, 1 - t) for t in tails] + [(v, 1 - v) for v in np.linspace(0.01, 0.99, 41)] + [(1 - t, t) for t in tails]
    for v, vc in pairs:
        if v <= 0.5:
            ref = brentq(lambda z: _mixture_cdf(z, a, mu) - v, -40, 40, xtol=1e-15, rtol=1e-15)
        else:
            ref = brentq(lambda z: a * special.ndtr(-z) + (1 - a) * special.ndtr(mu - z) - vc, -40, 40, xtol=1e-15, rtol=1e-15)
        assert abs(mixture_ppf(v, vc, a, mu) - ref) < 1e-11 * (1 + abs(ref)), (v, ref)


@pytest.mark.parametrize("persistence, alpha", [(0.97, 0.1), (1.0, 0.0), (1.0, 0.3)])
def test_stratified_draws_fill_every_stratum_of_the_projection_and_keep_the_rest(persistence, alpha):
    """K = 50 strata, 1,000 paths: path j's projection ẑ = d·ε/|d| lies in cell j mod 50 of the
    mixture law's quantiles; the normals' components orthogonal to d are the plain ones; the weight
    is dP/dQ of ẑ; the tenants' draws are untouched."""
    d = base_dict()
    d["factor"]["persistence"] = persistence
    cfg = make_config(d)
    plain = DrawSource.for_config(cfg).draws(0, 1000)
    m, K = -1.7, 50
    src = TiltedDrawSource.for_config(with_importance(cfg, factor_shift=m, plain_share=alpha, strata=K))
    q, w = src.draws(0, 1000), src.weights(0, 1000)
    u = src.direction / np.linalg.norm(src.direction)
    z = q.eps @ u
    mu = m * np.linalg.norm(src.direction)
    cell = np.arange(1000) % K
    edges = np.array([-np.inf] + [float(mixture_ppf(h / K, (K - h) / K, alpha, mu)) for h in range(1, K)] + [np.inf])
    assert np.all((z >= edges[cell] - 1e-12) & (z <= edges[cell + 1] + 1e-12))
    np.testing.assert_allclose(q.eps - np.outer(z, u), plain.eps - np.outer(plain.eps @ u, u), atol=1e-12)
    r = np.exp(mu * z - 0.5 * mu * mu)
    np.testing.assert_allclose(w, 1.0 / (alpha + (1 - alpha) * r) if alpha else 1.0 / r, rtol=1e-12)
    assert q.expo.tobytes() == plain.expo.tobytes() and q.key.tobytes() == plain.key.tobytes()


def test_stratified_draws_keep_the_joint_law_of_factor_and_burst():
    """Stratified, with the burst tilted and a defensive share: weighted frequencies of events of
    the factor, the burst month and both at once equal their exact P-probabilities within 4 SE (the
    burst month is drawn from the mixture component given the stratified factor)."""
    d = base_dict()
    d["factor"]["persistence"] = 1.0
    cfg = make_config(d)
    h, T, n = cfg.factor.burst.monthly_hazard, cfg.run.months, 40_000
    src = TiltedDrawSource.for_config(with_importance(cfg, factor_shift=-2.0, burst_hazard=0.04, plain_share=0.2,
                                                      strata=400))
    draws, w = src.draws(0, n), src.weights(0, n)
    y0, B = draws.eps[:, 0], draws.burst_month
    for event, exact in [
        (np.ones(n, bool), 1.0), (y0 < -2.5, special.ndtr(-2.5)), (B <= 12, 1 - (1 - h) ** 12),
        ((y0 < -1.0) & (B <= T), special.ndtr(-1.0) * (1 - (1 - h) ** T)), ((y0 > 0.5) & (B > T), special.ndtr(-0.5) * (1 - h) ** T),
    ]:
        x = w * event
        se = x.std(ddof=1) / math.sqrt(n)  # the unstratified SE: conservative
        assert abs(x.mean() - exact) < 4 * se, (x.mean(), exact, se)


def test_stratum_sums_give_the_textbook_stratified_variance_and_merge_exactly():
    """StratumSums against numpy's per-stratum sample variances, Σ_h n_h·s_h² / n², and the same
    limbs whether a chunk is tallied whole or in uneven pieces merged in any order."""
    rng = np.random.default_rng(5)
    n, K = 6000, 60
    y = rng.exponential(size=(n, 3)) * (rng.random((n, 3)) < 0.3)
    stratum = np.arange(n) % K
    whole = StratumSums.of(y, stratum, K)
    cells = y.reshape(-1, K, 3)
    ref = (cells.var(axis=0, ddof=1) * cells.shape[0]).sum(axis=0) / n**2
    np.testing.assert_allclose(whole.mean_variance(n), ref, rtol=1e-10)
    cuts = [0, 17, 1000, 1001, 4500, n]
    parts = [StratumSums.of(y[a:b], stratum[a:b], K) for a, b in zip(cuts, cuts[1:])]
    merged = parts[-1]
    for p in parts[-2::-1]:
        merged = merged.merge(p)
    assert merged.limbs.tobytes() == whole.limbs.tobytes() and merged.count.tobytes() == whole.count.tobytes()
    assert StratumSums.of(y[:40], stratum[:40], K).mean_variance(40) is None  # strata with < 2 paths


def test_the_stratified_standard_error_matches_the_spread_over_seeds():
    """40 seeds of a 1,000-path stratified run (K = 125): the variance of the senior's EL across seeds
    against the mean squared stratified SE, within the 0.1%–99.9% band of χ²₃₉/39; the unstratified SE
    (the sample SD of w·L) would overstate it several times over, outside the band."""
    POINTS2 = [(0.0, 0.1), (0.1, 1.0)]
    els, ses, naive = [], [], []
    for seed in range(40):
        cfg = homogeneous_config(100, 0.02, 0.3, 60, recovery_rate=0.4, points=POINTS2, paths=1000, seed=1000 + seed)
        cfg = with_importance(cfg, target="pool.T1", view="allocation", factor_shift=-2.0)
        res = run(cfg)
        row = res.tranches[res.tranches["view"] == "allocation"].set_index("tranche").loc["T1"]
        els.append(row["el"])
        ses.append(row["el_se"])
        loss, w = _allocation_losses(cfg, 1)
        naive.append((w * loss).std(ddof=1) / math.sqrt(loss.size))
    spread = np.var(els, ddof=1)
    lo, hi = stats.chi2.ppf([0.001, 0.999], 39) / 39
    assert lo < spread / np.mean(np.square(ses)) < hi, (spread, np.mean(np.square(ses)))
    assert not lo < spread / np.mean(np.square(naive)) < hi  # the check would see an unstratified SE


def _allocation_losses(cfg, k):
    from engine.simulation.chunk import Job
    from engine.simulation.execute import simulate

    job = Job.prepare(cfg)
    out = simulate(job.plan, job.source(), 0, cfg.run.paths)
    return out.tranche_alloc_loss[:, k], out.weight


def test_strata_that_do_not_divide_the_paths_are_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"importance\.strata.*must divide run\.paths = 2000"):
        with_importance(make_config(), factor_shift=-1.0, strata=300)
    with pytest.raises(ConfigError, match=r"importance\.strata"):
        with_importance(make_config(), factor_shift=-1.0, strata=2000)  # one path a stratum
    assert with_importance(make_config(), factor_shift=-1.0, strata=1000).importance.strata == 1000


# ----------------------------------------------------------------------------- the control variate


def test_the_control_is_the_pools_own_defaults_minus_their_conditional_probability():
    """A homogeneous static-factor pool of equal names: the kernel's deal_control equals, per path,
    the share of names whose Exp(1) draw is within the T-month hazard minus 1 − (1 − q(X))^T,
    q(X) = Φ((c − √ρ·X)/√(1 − ρ)), computed here from the written-out draws; its weighted mean is 0
    within 4 SE."""
    n_names, T, rho, pd_ = 100, 60, 0.3, 0.02
    cfg = with_importance(homogeneous_config(n_names, pd_, rho, T, recovery_rate=0.4, points=POINTS, paths=4000, seed=3),
                          target="pool.T5", view="allocation", factor_shift=-2.0)
    from engine.simulation.chunk import Job
    from engine.simulation.execute import simulate

    job = Job.prepare(cfg)
    src = job.source()
    out = simulate(job.plan, src, 0, 4000)
    draws = src.draws(0, 4000)
    c = float(calibrate_thresholds([pd_], [rho], persistence=1.0, student_t_dof=None, method="unconditional")[0])
    q = special.ndtr((c - math.sqrt(rho) * draws.eps[:, 0]) / math.sqrt(1 - rho))
    hazard = -T * np.log1p(-q)
    ref = (draws.expo <= hazard[:, None]).mean(axis=1) + np.expm1(-hazard)
    np.testing.assert_allclose(out.deal_control[:, 0], ref, atol=1e-9)
    assert np.abs(ref).max() > 0.05  # not a vacuous zero
    x = out.weight * out.deal_control[:, 0]
    assert abs(x.mean()) < 4 * x.std(ddof=1) / math.sqrt(x.size)


def test_control_estimates_equal_a_plain_numpy_regression_estimator():
    """control_estimates against the textbook stratified regression estimator written in numpy:
    β = Σ_h Σ_(i∈h) (y − ȳ_h)(c − c̄_h) / Σ_h Σ_(i∈h) (c − c̄_h)², ȳ − β·c̄, and its SE from the
    within-stratum variance of y − β·c."""
    from engine.analytics.stats import control_estimates

    rng = np.random.default_rng(9)
    n, K, k = 4000, 40, 2
    stratum = np.arange(n) % K
    x = rng.normal(size=n) + stratum / K
    c = rng.normal(size=(n, k)) * 0.1
    y = 1.0 + x[:, None] * 0.1 + c * 3 + rng.normal(size=(n, k)) * 0.01
    a = np.clip(y - 1.0, 0, 1)
    ss = StratumSums.of(np.concatenate([y, a, c, y + c, a + c], axis=1), stratum, K)
    el, se = control_estimates(ss, n)
    for view, v in ((0, y), (1, a)):
        for j in range(k):
            yy, cc = v[:, j].reshape(-1, K), c[:, j].reshape(-1, K)
            dy, dc = yy - yy.mean(axis=0), cc - cc.mean(axis=0)
            beta = (dy * dc).sum() / (dc * dc).sum()
            r = yy - beta * cc
            ref_se = math.sqrt((r.var(axis=0, ddof=1) * r.shape[0]).sum()) / n
            assert el[view, j] == pytest.approx(v[:, j].mean() - beta * c[:, j].mean(), rel=1e-10, abs=1e-13)
            assert se[view, j] == pytest.approx(ref_se, rel=1e-8)
            if view == 0:  # linear in the control: it removes most of the variance
                assert se[view, j] < 0.5 * math.sqrt((yy.var(axis=0, ddof=1) * yy.shape[0]).sum()) / n


# ----------------------------------------------------------------------------- unbiasedness


def t_copula_tranche_el(n, c, rho, months, lgd, attach, detach, nu, nx=240, nw=160):
    """E over W and X of the binomial-mixture payoff under the t-copula (static factor):
    P(x, w) = 1 − (1 − Φ((c·w − √ρ x)/√(1−ρ)))^months, w = sqrt(χ²_ν/ν); tensor Gauss–Legendre."""
    P, ww, wx = t_copula_horizon_pd(c, rho, nu, months, nx, nw, xmax=10.0)
    # Clipped away from 0 and 1, where scipy's binomial pmf overflows (an error below 1e-13).
    P = np.clip(P, 1e-15, 1 - 1e-15)
    k = np.arange(n + 1)
    payoff = np.minimum(np.maximum(lgd * k / n - attach, 0.0), detach - attach) / (detach - attach)
    el = stats.binom.pmf(k[None, None, :], n, P[:, :, None]) @ payoff
    return float(ww @ el @ wx)


CASES = [
    # (PD, ρ, ν, target tranche)
    (0.02, 0.30, None, "T5"),
    (0.01, 0.15, None, "T4"),
    (0.02, 0.30, 6.0, "T5"),
]


@pytest.mark.parametrize("pd_, rho, nu, target", CASES)
def test_importance_sampled_tranche_els_agree_with_the_binomial_mixture(pd_, rho, nu, target):
    """20,000 importance-sampled paths of a homogeneous 100-name static-factor pool: every
    allocation tranche's EL within 3.5 computed SE of the semi-analytic reference (Gaussian and t
    copulas), and (Gaussian) the senior tranche's SE under half of plain Monte Carlo's at the same paths."""
    n_names, T, r = 100, 60, 0.4
    cfg = homogeneous_config(n_names, pd_, rho, T, recovery_rate=r, points=POINTS, paths=20_000, seed=77,
                             student_t_dof=nu)
    c = float(calibrate_thresholds([pd_], [rho], persistence=1.0, student_t_dof=nu, method="unconditional")[0])
    res = run(with_importance(cfg, target=f"pool.{target}", view="allocation"))
    info = res.manifest["scenarios"]["base"]["importance"]
    assert res.manifest["scenarios"]["base"]["estimator"] == "importance_sampling"
    assert info["factor_shift"] < -0.5  # the pilot moved the factor towards losses
    alloc = res.tranches[res.tranches["view"] == "allocation"].set_index("tranche")
    for j, (a, d) in enumerate(POINTS):
        ref = (binomial_tranche_el(n_names, c, rho, T, 1 - r, a, d) if nu is None
               else t_copula_tranche_el(n_names, c, rho, T, 1 - r, a, d, nu))
        el, se = alloc.loc[f"T{j}", "el"], alloc.loc[f"T{j}", "el_se"]
        assert abs(el - ref) < 3.5 * se, (j, el, ref, se)
        el, se = alloc.loc[f"T{j}", "el_cv"], alloc.loc[f"T{j}", "el_cv_se"]  # with the control variate
        assert abs(el - ref) < 3.5 * se, (j, "cv", el, ref, se)
    if nu is None:  # the t-copula's mixing variable W is not tilted, so the shift helps it less
        plain = run(cfg).tranches.set_index(["view", "tranche"]).loc[("allocation", target)]
        assert alloc.loc[target, "el_se"] < plain["el_se"] / 2.0
    assert abs(info["weight_mean"] - 1.0) < 4 * info["weight_mean_se"]


# ----------------------------------------------------------------------------- weighted statistics


def naive_weighted_var_es(loss, w, level, total):
    """The weighted VaR and ES by brute force: losses binned like the engine's histogram, VaR the
    smallest binned value v with Σ_{L>v} w / total ≤ 1 − level, ES the upper tail's mean."""
    idx = np.where(loss <= 0, 0, np.where(loss >= 1, len(BIN_VALUES) - 1,
                                          np.clip(np.ceil(loss / 1e-4), 1, len(BIN_VALUES) - 2))).astype(int)
    v = BIN_VALUES[idx]
    budget = (1 - level) * total
    for cand in sorted(set(v.tolist())):
        above = math.fsum(w[v > cand])
        if above <= budget:
            tail = math.fsum((w * v)[v > cand])
            return cand, (tail + (budget - above) * cand) / budget
    raise AssertionError("unreachable")


@pytest.mark.parametrize("level", [0.95, 0.99, 0.999])
def test_weighted_quantile_and_es_equal_the_brute_force_weighted_order_statistic(level):
    rng = np.random.default_rng(5)
    n = 20_000
    loss = np.where(rng.random(n) < 0.3, rng.beta(0.7, 2.0, n), 0.0)
    loss[rng.random(n) < 0.01] = 1.0
    w = rng.lognormal(-0.5, 1.0, n)
    hist = loss_histogram(loss[:, None], PathWeights.of(w)).value()[0]
    var, es = quantile_and_es(hist, level, total=float(n))
    ref_var, ref_es = naive_weighted_var_es(loss, w, level, float(n))
    assert var == ref_var
    assert es == pytest.approx(ref_es, rel=1e-12)


def test_unit_weights_give_the_plain_quantiles():
    rng = np.random.default_rng(9)
    loss = np.where(rng.random(5000) < 0.2, rng.random(5000), 0.0)[:, None]
    plain = loss_histogram(loss)[0]
    weighted = loss_histogram(loss, PathWeights.of(np.ones(5000))).value()[0]
    np.testing.assert_array_equal(weighted, plain.astype(float))
    for level in (0.95, 0.99):
        assert quantile_and_es(weighted, level, total=5000.0)[0] == quantile_and_es(plain, level)[0]


def test_mass_sums_are_exact_and_independent_of_the_merge_order():
    rng = np.random.default_rng(3)
    w = np.concatenate([rng.lognormal(0, 3, 3000), [0.0, 2.0**39, 1e-12]])
    pw = PathWeights.of(w)
    flags = rng.random((w.size, 4)) < 0.5
    from engine.analytics.stats import _count

    whole = _count(flags, pw)
    parts = [_count(flags[a:b], pw.rows(a, b)) for a, b in ((0, 700), (700, 701), (701, w.size))]
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[2].merge(parts[0].merge(parts[1]))
    np.testing.assert_array_equal(whole.limbs, left.limbs)
    np.testing.assert_array_equal(whole.limbs, right.limbs)
    # Against exact rational arithmetic on the per-path fixed-point weights.
    q = [round(x * 2**40) if x < 2**22 else (int(x // 2**22) << 62) + round((x - (x // 2**22) * 2**22) * 2**40) for x in w]
    for j in range(4):
        exact = sum(qi for qi, f in zip(q, flags[:, j]) if f)
        limbs = [int(v) for v in whole.limbs[j]]
        assert limbs[0] + (limbs[1] << 31) + (limbs[2] << 62) == exact


def _numpy_fixed_sum(v):
    """Column sums of v rounded once each to 2^-40, in Python ints: the numpy formulation."""
    whole = np.floor(v)
    frac = np.rint((v - whole) * 2.0**40).astype(np.int64)
    return np.array([int(x) * (1 << 40) + int(f) for x, f in zip(whole.astype(np.int64).astype(object).sum(axis=0),
                                                                  frac.astype(object).sum(axis=0))], dtype=object)


def test_weighted_moments_and_bins_equal_the_numpy_formulation():
    """The jitted weighted tallies give exactly the integers of the numpy formulation: Σw·x, Σw·x²,
    Σ(w·x)² and Σw over the finite values (NaN skipped, values from 1e-12 to 1e3, weights up to 2^12),
    and Σw per bin (weights up to 2^39) against Python-int sums of the weights' limbs."""
    from engine.analytics.stats import _weighted_bincount

    rng = np.random.default_rng(21)
    n = 3000
    v = rng.exponential(size=(n, 4)) * np.array([1e-12, 1.0, 30.0, 1e3])
    v[rng.random((n, 4)) < 0.1] = np.nan
    w = rng.lognormal(0.0, 2.0, n)
    w[:3] = [0.0, 2.0**12, 1e-9]
    pw = PathWeights.of(w)
    m = Moments.of(v, pw)
    fin = np.isfinite(v)
    x = np.where(fin, v, 0.0)
    wx = w[:, None] * x
    for got, ref in ((m.total, wx), (m.squares, wx * x), (m.wsquares, wx * wx), (m.weight, np.where(fin, w[:, None], 0.0))):
        assert list(got) == list(_numpy_fixed_sum(ref))
    assert list(m.count) == list(fin.sum(axis=0))
    w[3] = 2.0**39  # the top limb
    pw = PathWeights.of(w)
    idx = rng.integers(-1, 12, size=(n, 3))
    mass = _weighted_bincount(idx, 11, pw)
    exact = [[sum(int(pw.limbs[i, 0]) + (int(pw.limbs[i, 1]) << 31) + (int(pw.limbs[i, 2]) << 62) for i in np.flatnonzero(idx[:, j] == b))
              for b in range(11)] for j in range(3)]
    got = [[int(l[0]) + (int(l[1]) << 31) + (int(l[2]) << 62) for l in row] for row in mass.limbs]
    assert got == exact


def test_weights_out_of_range_are_refused_with_the_remedy():
    for bad in (np.inf, -1.0, 2.0**41, np.nan):
        with pytest.raises(RuntimeError, match="importance.factor_shift"):
            PathWeights.of(np.array([1.0, bad]))
    assert isinstance(Mass(np.zeros(3, np.int64)).value(), (float, np.floating))


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def sampled():
    cfg = with_importance(make_config(), target="d1.A", pilot_paths=1000, pilot_rounds=4)
    return cfg, run(cfg, paths=4096, chunk_paths=4096)


def test_importance_sampled_runs_are_bit_identical_across_chunks_and_threads(sampled):
    cfg, ref = sampled
    for kw in ({"chunk_paths": 1000, "threads": 1}, {"chunk_paths": 700, "threads": 2}):
        other = run(cfg, paths=4096, **kw)
        for name in ref.tables:
            pd.testing.assert_frame_equal(ref.tables[name], other.tables[name], check_exact=True)


def test_the_manifest_records_the_estimator_and_the_chosen_law(sampled):
    cfg, res = sampled
    s = res.manifest["scenarios"]["base"]
    assert s["estimator"] == "importance_sampling"
    imp = s["importance"]
    assert imp["chosen_by"] == "cross-entropy" and imp["target"] == "d1.A"
    assert 1 <= len(imp["rounds"]) <= 4
    assert imp["burst_hazard"] is not None  # the config's burst is random, so it was tilted too
    assert s["timings"]["importance_s"] > 0
    assert (res.tranches["ess"] > 0).all()
    # A fixed law is used as given, with no pilot.
    fixed = run(with_importance(make_config(), factor_shift=-0.5, burst_hazard=0.04), paths=1000)
    f = fixed.manifest["scenarios"]["base"]["importance"]
    assert f["chosen_by"] == "config" and f["factor_shift"] == -0.5 and f["rounds"] == []
    # The default strata: the largest divisor of the paths up to paths/16 (4,096: 256; 1,000: 50, not 62).
    assert imp["strata"] == 256 and f["strata"] == 50
    prime = run(with_importance(make_config(), factor_shift=-0.5, burst_hazard=0.04), paths=1009)
    assert prime.manifest["scenarios"]["base"]["importance"]["strata"] == 1  # no divisor: not stratified



def assert_agrees_with_plain(imp, plain, limit=4.0):
    """Two runs on independent paths agree: every tranche's EL (both views) and every deal's mean
    net loss within ``limit`` combined SE."""
    a, b = imp.tranches.set_index(["tranche", "view"]), plain.tranches.set_index(["tranche", "view"])
    z = (a["el"] - b["el"]) / np.hypot(a["el_se"], b["el_se"])
    assert (z.abs() < limit).all(), z
    zd = (imp.deals["nl_mean"] - plain.deals["nl_mean"]) / np.hypot(imp.deals["nl_se"], plain.deals["nl_se"])
    assert (zd.abs() < limit).all(), zd


def test_importance_sampled_el_agrees_with_plain_monte_carlo_on_a_waterfall_deal(sampled):
    """The cash-flow view (triggers, reserve, GPU collateral) has no closed form: plain and
    importance-sampled runs on independent paths agree within 4 combined SE, on every tranche
    and on the deal's mean net loss."""
    cfg, _ = sampled
    imp = run(cfg, paths=20_000)
    plain = run(make_config(), paths=20_000, seed=99)
    assert_agrees_with_plain(imp, plain)


def test_path_rows_carry_the_weights(tmp_path, sampled):
    cfg, _ = sampled
    res = run(cfg, paths=1500, out=tmp_path / "r", paths_out=True)
    rows = res.paths("tranches")
    assert "weight" in rows and (rows["weight"] > 0).all()
    per_path = rows[rows["tranche"] == "A"].sort_values("path")
    el = float((per_path["weight"] * per_path["principal_loss"]).sum() / 1500)
    cash = res.tranches[(res.tranches["view"] == "cashflow") & (res.tranches["tranche"] == "A")]
    assert el == pytest.approx(float(cash["el"].iloc[0]), rel=1e-9, abs=1e-12)


def test_a_deterministic_what_if_ignores_the_importance_section():
    d = base_dict()
    d["importance"] = {"factor_shift": -1.0}
    d["scenarios"] = {"flat": {"set": {"deterministic": {"factor": [[1, -1.0]]}}}}
    res = run(validate_config(d), scenario="flat")
    assert res.manifest["scenarios"]["flat"]["estimator"] == "plain"


@pytest.mark.parametrize("section, where, message", [
    ({"target": "nodeal.A"}, "importance.target", "unknown deal"),
    ({"target": "d1.Z"}, "importance.target", "has no tranche"),
    ({"target": "d1"}, "importance.target", "has no tranche"),
    ({"factor_shift": 9.0}, "importance.factor_shift", "less than or equal to 8"),
    ({"burst_hazard": 0.0}, "importance.burst_hazard", "greater than 0"),
    ({"pilot_paths": 10}, "importance.pilot_paths", "greater than or equal to 256"),
    ({"shift": -1.0}, "importance.shift", "unknown field"),
    ({"default_floor": 0.0}, "importance.default_floor", "greater than 0"),
    ({"default_floor": 1.0}, "importance.default_floor", "less than 1"),
    ({"horizon": 0}, "importance.horizon", "greater than or equal to 1"),
    ({"horizon": 10_000}, "importance.horizon", "past the run's horizon"),
    ({"factor_tilt": "dips"}, "importance.factor_tilt", "'shift' or 'hazard'"),
])
def test_bad_importance_config_names_the_field(section, where, message):
    d = base_dict()
    d["importance"] = section
    with pytest.raises(ConfigError) as exc:
        validate_config(d)
    assert any(p == where and message in m for p, m in exc.value.errors), exc.value.errors


def test_tilting_a_fixed_burst_or_allocating_a_tranche_without_points_is_refused():
    d = base_dict()
    d["factor"]["burst"] = {"month": 12, "shift": -1.0}
    d["importance"] = {"burst_hazard": 0.1}
    with pytest.raises(ConfigError) as exc:
        validate_config(d)
    assert any(p == "importance.burst_hazard" and "fixed" in m for p, m in exc.value.errors)
    d = base_dict()
    for t in d["deals"][0]["tranches"]:
        t.pop("attach"), t.pop("detach")
    d["importance"] = {"target": "d1.A", "view": "allocation"}
    with pytest.raises(ConfigError) as exc:
        validate_config(d)
    assert any(p == "importance.view" and "attach/detach" in m for p, m in exc.value.errors)


def test_holder_tables_are_weighted_and_still_reconcile():
    """With holders: the marks are the plain run's (fitted on plain paths), the weighted holder
    losses reconcile exactly with the weighted tranche marks, and each holder's expected total loss
    agrees with plain Monte Carlo within 4 combined SE (same seed, so the same marks; the tilted
    paths are positively correlated with the plain ones, which only widens the tolerance)."""
    d = holders_dict(nested_paths=2, nested_inner=32)
    plain_cfg = make_config(copy.deepcopy(d))
    d["importance"] = {"target": "d1.B", "pilot_paths": 1000, "pilot_rounds": 4}
    cfg = make_config(d)
    imp = run(cfg, paths=8000, chunk_paths=2000)
    plain = run(plain_cfg, paths=8000)
    pd.testing.assert_frame_equal(imp.marks.drop(columns=["p_outstanding", "price_mean", "rating_mode", "p_investment_grade",
                                                          "mtm_direct_el", "mtm_fire_sale_el"]),
                                  plain.marks.drop(columns=["p_outstanding", "price_mean", "rating_mode", "p_investment_grade",
                                                            "mtm_direct_el", "mtm_fire_sale_el"]), check_exact=True)
    h, m = imp.holders, imp.marks
    for col, mcol in (("el_direct_tranches", "mtm_direct_el"), ("el_fire_sale_tranches", "mtm_fire_sale_el")):
        np.testing.assert_allclose(h[col].sum(), m[mcol].sum(), rtol=1e-9)
    a, b = imp.holders.set_index("holder"), plain.holders.set_index("holder")
    z = (a["el_total"] - b["el_total"]) / np.hypot(a["el_total_se"], b["el_total_se"])
    assert (z.abs() < 4).all(), z
    assert ((a["p_failure"].dropna() >= 0) & (a["p_failure"].dropna() <= 1.0 + 1e-9)).all()
    assert imp.manifest["scenarios"]["base"]["importance"]["factor_shift"] != 0.0


def test_report_and_cli_say_which_estimator_ran(tmp_path, capsys):
    """The report states the estimator and the sampling law and shows each tranche's effective
    paths; a plain run's report says plain Monte Carlo; the CLI prints the same line."""
    from engine.cli.main import main
    from engine.report.html import build_report
    from engine.analytics.diagnostics import run_warnings

    cfg = with_importance(make_config(), target="d1.A", factor_shift=-1.0, burst_hazard=0.04)
    res = run(cfg, paths=2000, out=tmp_path / "is")
    html = build_report(tmp_path / "is").read_text(encoding="utf-8")
    assert "Estimator: base: importance sampling towards d1.A (factor level shifted by -1.000, burst hazard 0.04" in html
    assert "effective paths" in html and "EL, control variate" in html
    assert ", 125 strata along the shift" in html  # 2,000 paths: the largest divisor up to 2000/16
    run(make_config(), paths=2000, out=tmp_path / "plain")
    plain_html = build_report(tmp_path / "plain").read_text(encoding="utf-8")
    assert "Estimator: plain Monte Carlo." in plain_html and "EL, control variate" not in plain_html
    # A tranche whose EL rests on few heavy paths is warned about, though its SE looks small.
    t = res.tables["tranches"].copy()
    t.loc[0, ["el", "el_se", "ess"]] = [0.01, 0.001, 5.0]
    assert any("rests on few effective paths" in w for w in run_warnings({**res.tables, "tranches": t}))
    path = tmp_path / "c.toml"
    path.write_text('[run]\nmonths = 60\npaths = 1000\nseed = 1\n[[tenants]]\nname = "a"\npd = 0.05\nrho = 0.3\n'
                    '[[deals]]\nname = "d"\nlegal_final_month = 60\nleases = [{tenant = "a", term_months = 60, monthly_rent = 1e6}]\n'
                    'tranches = [{name = "A", balance = 30e6}]\nwaterfall = [{type = "principal", classes = ["A"]}, {type = "residual"}]\n'
                    '[importance]\nfactor_shift = -1.0\n', encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "cli"), "--no-progress", "--no-report"]) == 0
    assert "Estimator: base: importance sampling towards d.A" in capsys.readouterr().out


# ----------------------------------------------------------------------------- tilted defaults


def _explicit_tilted_hazard(H, lam, hm):
    """The tilted cumulative hazard written out: λ·H(t) to month hm, H(t) + (λ − 1)·H(hm) after it."""
    HQ = H.copy()
    HQ[:hm + 1] *= lam
    HQ[hm + 1:] += (lam - 1.0) * H[hm]
    return HQ


def _month_probabilities(H):
    """P(τ = m) for m = 1..T, and P(τ > T), of a cumulative hazard H[0..T]."""
    s = np.exp(-H)
    return np.append(s[:-1] - s[1:], s[-1])


@pytest.mark.parametrize("lam, hm", [(7.5, 12), (2.0, 30), (40.0, 1)])
def test_default_log_ratio_equals_the_ratio_of_the_two_laws_month_probabilities(lam, hm):
    from kernels.draws import default_log_ratio

    rng = np.random.default_rng(3)
    H = np.concatenate([[0.0], np.cumsum(rng.uniform(1e-4, 4e-3, 30))])
    H[5] = H[4]  # a month with no hazard: τ = 5 is impossible under both laws
    P, Q = _month_probabilities(H), _month_probabilities(_explicit_tilted_hazard(H, lam, hm))
    for m in range(1, 32):
        if m == 5:
            assert P[4] == 0.0 and Q[4] == 0.0
            continue
        ref = math.log(Q[m - 1] / P[m - 1])
        assert default_log_ratio(H, m, lam, hm) == pytest.approx(ref, rel=1e-9, abs=1e-12), m


def test_tilted_default_months_are_the_first_months_the_explicit_tilted_hazard_reaches_the_draw():
    """tilted_defaults against a naive oracle: τ_i = first t with H_Q(t) ≥ −ln U_i for the tilted
    tenants of a tilted path, H(t) for the others and on a plain path; the written thresholds
    give the same months through the untilted hazard; λ brings P(τ ≤ h | factor) to the floor."""
    from engine.plan.rng import _plan
    from kernels.credit import default_month
    from kernels.draws import STREAM_DEFAULT, class_survival, tilt_hazards, tilted_defaults
    from kernels.philox import uniform_at

    T, hm, floor, N = 36, 20, 0.6, 41
    rng = np.random.default_rng(5)
    H = np.vstack([np.concatenate([[0.0], np.cumsum(rng.uniform(lo, 2 * lo, T))]) for lo in (2e-4, 3e-3, 0.05)])
    tenant_class = (np.arange(N) % 3).astype(np.int32)
    tilt = (np.arange(N) % 4 != 0).astype(np.uint8)
    gp = _plan(2024, T, weighted=True, default_floor=floor, horizon=hm, tilt_tenant=tilt)
    surv, lam, surv_tilt = np.empty(3), np.empty(3), np.empty(3)
    class_survival(H, surv)
    tilt_hazards(gp, H, surv, lam, surv_tilt)
    goal = -np.log1p(-floor)
    for c in range(3):
        if H[c, hm] < goal:
            assert 1.0 - np.exp(-lam[c] * H[c, hm]) == pytest.approx(floor, rel=1e-12)
        else:
            assert lam[c] == 1.0  # already at or above the floor: untouched
    assert (lam[:2] > 1.0).all() and lam[2] == 1.0
    forced = np.full(N, T + 1, dtype=np.int32)
    checked = 0
    for path in range(300):
        for tilted in (True, False):
            tau = np.empty(N, dtype=np.int32)
            expo = np.empty(N)
            lr = tilted_defaults(gp, path, H, tenant_class, forced, surv, lam, surv_tilt, tilted, tau, expo)
            ref_lr = 0.0
            for i in range(N):
                c = tenant_class[i]
                e = -math.log(uniform_at(gp.key0, gp.key1, STREAM_DEFAULT, path, i))
                HQ = _explicit_tilted_hazard(H[c], lam[c], hm) if (tilt[i] and tilted) else H[c]
                hit = np.flatnonzero(HQ[1:] >= e)
                m = int(hit[0]) + 1 if hit.size else T + 1
                assert tau[i] == m, (path, i, tilted)
                assert default_month(H[c], expo[i]) == m
                if tilt[i] and lam[c] != 1.0:
                    Q = _month_probabilities(_explicit_tilted_hazard(H[c], lam[c], hm))
                    ref_lr += math.log(Q[m - 1] / _month_probabilities(H[c])[m - 1])
                checked += m <= T
            assert lr == pytest.approx(ref_lr, rel=1e-9, abs=1e-12)
    assert checked > 1000  # the oracle saw plenty of defaults, early and late



def _variant(name: str) -> dict:
    """The base config, with the branch of the draws under test switched on."""
    d = base_dict()
    if name == "t_copula_and_forced_tenant":
        d["factor"]["student_t_dof"] = 5.0
        d["tenants"][1]["default_month"] = 30  # forced: never tilted, its month fixed
    elif name == "poisson_releases_and_a_shared_tenant":
        d["gpu"]["releases"] = "poisson"
        second = copy.deepcopy(d["deals"][0])
        second["name"] = "d2"
        second["leases"] = second["leases"][:1]  # "lab" leases from both deals
        d["deals"].append(second)
    elif name == "static_factor":
        d["factor"]["persistence"] = 1.0
    return d


@pytest.mark.parametrize("factor_tilt", ["shift", "hazard"])
@pytest.mark.parametrize("variant", ["base", "t_copula_and_forced_tenant", "poisson_releases_and_a_shared_tenant",
                                     "static_factor"])
def test_written_draws_with_tilted_defaults_give_the_kernels_paths_and_weights(variant, factor_tilt):
    from engine.plan.compile import compile_plan
    from engine.simulation.execute import simulate, simulate_draws

    law = dict(factor_shift=-0.7, burst_hazard=0.03, horizon=18, strata=50, factor_tilt=factor_tilt)
    cfg = with_importance(make_config(_variant(variant)), **law, default_floor=0.4)
    plan = compile_plan(cfg)
    src = TiltedDrawSource.for_config(cfg, plan=plan)
    own = simulate(plan, src, 100, 400)
    written = simulate_draws(plan, src.draws(100, 400))
    np.testing.assert_array_equal(src.weights(100, 400), own.weight)
    np.testing.assert_array_equal(TiltedDrawSource.for_config(cfg).weights(100, 400), own.weight)  # plan compiled for it
    for f in ("tranche_loss", "tranche_alloc_loss", "deal_net_loss", "deal_defaults", "deal_renewals"):
        np.testing.assert_array_equal(getattr(own, f), getattr(written, f), err_msg=f)
    shifted = {**law, "factor_tilt": "shift"}
    plain = simulate(plan, TiltedDrawSource.for_config(with_importance(make_config(_variant(variant)), **shifted)), 100, 400)
    assert own.deal_defaults[:, 0].mean() > 1.1 * plain.deal_defaults[:, 0].mean()  # the tilt made defaults commoner
    if variant == "t_copula_and_forced_tenant":
        tilt = src.tilt_tenant
        assert list(tilt) == [1, 0, 1]  # the forced tenant is left alone
        if factor_tilt == "hazard":  # nor does its hazard pull the factor: classes of lab and neo, one each
            assert sorted(src.factor_tilt) == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("variant", ["base", "static_factor"])
def test_written_draws_with_the_hazard_tilt_alone_give_the_kernels_paths_and_weights(variant):
    from engine.plan.compile import compile_plan
    from engine.simulation.execute import simulate, simulate_draws

    cfg = with_importance(make_config(_variant(variant)), factor_shift=-0.3, burst_hazard=0.03, horizon=18,
                          factor_tilt="hazard")
    plan = compile_plan(cfg)
    src = TiltedDrawSource.for_config(cfg, plan=plan)
    own = simulate(plan, src, 7, 300)
    written = simulate_draws(plan, src.draws(7, 300))
    np.testing.assert_array_equal(src.weights(7, 300), own.weight)
    for f in ("tranche_loss", "deal_net_loss", "deal_defaults"):
        np.testing.assert_array_equal(getattr(own, f), getattr(written, f), err_msg=f)


def _hazard_tilt_oracle(cfg, plan, src, draws):
    """A naive numpy ln dQ_tilt/dP of written draws under ``factor_tilt = "hazard"`` (docs/model.md §9):
    the shifted normals' m·d·ε − m²|d|²/2, the burst month's ratio (when the burst is tilted), and
    ln S(Y) − ln Z(B, W) with S = Σ_{k, t ≤ h} n_k·Φ(a_{k,t} − β_k·Y_t) and
    Z = Σ n_k·Φ((a_{k,t} − β_k·m)/sqrt(1 + β_k²)), a_{k,t} = (c_k/sqrt(W) − sqrt(ρ_k)·s·1{t ≥ B})/sqrt(1 − ρ_k),
    from the config's own tenants (no forced months), each with its threshold c from the plan."""
    from scipy.special import ndtr

    T, hz, m = cfg.run.months, src.horizon, src.shift
    phi, s = cfg.factor.persistence, cfg.factor.burst.shift
    h, hq = cfg.factor.burst.monthly_hazard, src.tilted_hazard
    d = src.direction
    eps, B, winv = draws.eps, draws.burst_month.astype(np.int64), draws.winv
    Y = np.empty_like(eps)
    Y[:, 0] = eps[:, 0]
    for t in range(1, T + 1):
        Y[:, t] = phi * Y[:, t - 1] + math.sqrt(1 - phi * phi) * eps[:, t]
    lr = m * (eps @ d) - 0.5 * m * m * (d @ d)
    if cfg.factor.burst.month is None:
        lr += np.where(B <= hz, np.log(hq / h) + (B - 1) * np.log((1 - hq) / (1 - h)), hz * np.log((1 - hq) / (1 - h)))
    deal = cfg.deals[0]
    names = {lease.tenant for lease in deal.leases}
    S = np.zeros(len(B))
    Z = np.zeros(len(B))
    months = np.arange(1, hz + 1)
    for i, ten in enumerate(cfg.tenants):
        if ten.name not in names:
            continue
        c = plan.credit.class_c[plan.credit.tenant_class[i]]
        beta = math.sqrt(ten.rho) / math.sqrt(1 - ten.rho)
        after = months[None, :] >= B[:, None]
        a = (c * winv[:, None] - math.sqrt(ten.rho) * s * after) / math.sqrt(1 - ten.rho)
        S += ndtr(a - beta * Y[:, 1:hz + 1]).sum(axis=1)
        Z += ndtr((a - beta * m) / math.sqrt(1 + beta * beta)).sum(axis=1)
    return lr + np.log(S) - np.log(Z)


@pytest.mark.parametrize("variant", ["unmixed", "mixed_stratified_t_copula", "fixed_burst"])
def test_the_hazard_tilted_factor_has_the_law_its_weights_say(variant):
    """φ = 0.9, 30,000 paths: the kernel's weights are 1/(α + (1 − α)·e^ℓ) of a naive numpy log-ratio ℓ
    of the hazard-tilted law (1e-9), and under them the factor's level, its dips below −1.5 and the
    burst months have the model's own law: weighted frequencies under Q against plain Monte Carlo on
    independent paths, each within 4 combined SE (a sampler drawing from any other law than the
    weights assume fails this); the weights' mean is 1 within 4 SE. Variants: a random burst with
    α = 0 and no strata; α = 0.1 with 50 strata (the move follows the stratified draw) under the
    t-copula (W in the thresholds); a burst fixed at month 10 (inside the horizon)."""
    from engine.plan.compile import compile_plan

    d = base_dict()
    d["factor"]["persistence"] = 0.9
    law = dict(factor_shift=-0.4, burst_hazard=0.05, plain_share=0.0, horizon=24, strata=1, factor_tilt="hazard")
    if variant == "mixed_stratified_t_copula":
        d["factor"]["student_t_dof"] = 5.0
        law.update(plain_share=0.1, strata=50)
    elif variant == "fixed_burst":
        d["factor"]["burst"] = {"month": 10, "shift": -1.0}
        del law["burst_hazard"]
    cfg = make_config(d)
    tilted = with_importance(cfg, **law)
    plan = compile_plan(tilted)
    src = TiltedDrawSource.for_config(tilted, plan=plan)
    n = 30_000
    draws, w = src.draws(0, n), src.weights(0, n)
    a = law["plain_share"]
    np.testing.assert_allclose(w, 1.0 / (a + (1 - a) * np.exp(_hazard_tilt_oracle(cfg, plan, src, draws))), rtol=1e-9)
    plain = DrawSource.for_config(cfg.with_run(seed=4242)).draws(0, n)

    def features(dr):
        Y = np.empty_like(dr.eps)
        Y[:, 0] = dr.eps[:, 0]
        for t in range(1, dr.eps.shape[1]):
            Y[:, t] = 0.9 * Y[:, t - 1] + math.sqrt(1 - 0.81) * dr.eps[:, t]
        cols = [Y[:, t] for t in (0, 6, 12, 24, 30)] + [(Y[:, 1:25].min(axis=1) < -1.5).astype(float)]
        cols += [(dr.burst_month <= k).astype(float) for k in (6, 24)] + [dr.winv]
        return np.column_stack(cols)

    fq, fp = features(draws) * w[:, None], features(plain)
    sd = np.hypot(fq.std(axis=0), fp.std(axis=0))
    live = sd > 0  # a fixed burst makes P(B ≤ k) a constant of both samples
    z = (fq.mean(axis=0) - fp.mean(axis=0))[live] / sd[live] * math.sqrt(n)
    assert (np.abs(z) < 4).all(), z
    dips_q = (features(draws)[:, 5]).mean()
    assert dips_q > 1.5 * fp[:, 5].mean()  # the tilt drew the dips where the hazard is
    assert abs(w.mean() - 1.0) < 4 * w.std(ddof=1) / math.sqrt(n)


def test_tilted_defaults_with_a_horizon_agree_with_plain_monte_carlo_on_a_waterfall_deal():
    """A dynamic factor (φ = 0.95), a random burst and a waterfall, floor 0.4 to month 30 of 60:
    the importance-sampled ELs of every tranche (both views) and the deal's mean net loss agree
    with plain Monte Carlo on independent paths within 4 combined SE."""
    cfg = with_importance(make_config(), target="d1.A", default_floor=0.4, horizon=30, pilot_paths=1000, pilot_rounds=4)
    imp = run(cfg, paths=20_000)
    plain = run(make_config(), paths=20_000, seed=98)
    assert_agrees_with_plain(imp, plain)
    info = imp.manifest["scenarios"]["base"]["importance"]
    assert info["horizon"] == 30 and abs(info["weight_mean"] - 1.0) < 4 * info["weight_mean_se"]


@pytest.mark.parametrize("field, value", [("default_floor", 0.5), ("factor_tilt", "hazard")])
def test_a_default_tilt_on_a_deal_without_leases_is_refused_naming_the_field(field, value):
    from pathlib import Path

    from engine import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "abs_cdo.toml")
    outer = next(d for d in cfg.deals if d.leases is None and d.lease_tape is None)
    d = cfg.resolved()
    d["importance"] = {"target": f"{outer.name}.{outer.tranches[0].name}", field: value}
    with pytest.raises(ConfigError) as exc:
        validate_config(d, base_dir=cfg._base_dir)
    assert any(p == f"importance.{field}" and "no leases of its own" in m for p, m in exc.value.errors), exc.value.errors


@pytest.mark.parametrize("field, value", [("default_floor", 0.5), ("factor_tilt", "hazard")])
def test_a_default_tilt_on_a_deal_whose_tenants_are_all_forced_is_refused_naming_the_field(field, value):
    d = base_dict()
    for ten in d["tenants"]:
        ten["default_month"] = 20
    d["importance"] = {"target": "d1.A", "factor_shift": -0.5, "burst_hazard": 0.03, field: value}
    with pytest.raises(ConfigError) as exc:
        run(validate_config(d), paths=200)
    assert any(p == f"importance.{field}" and "forced" in m for p, m in exc.value.errors), exc.value.errors


def test_a_single_tenants_tilted_default_probability_is_unbiased_for_the_closed_form():
    """One tenant, static factor, tilted to a floor of 0.5 up to the horizon, month 24 of 48: the weighted
    share of paths where it defaults by T (the allocation EL of a 0–100% tranche at LGD 1)
    against the Vasicek horizon PD E_x[1 − (1 − q(x))^T]; also beyond the tilt's horizon."""
    T, pd_, rho = 48, 0.004, 0.35
    cfg = homogeneous_config(1, pd_, rho, T, recovery_rate=0.0, points=[(0.0, 1.0)], paths=20_000, seed=41)
    c = float(calibrate_thresholds([pd_], [rho], persistence=1.0, student_t_dof=None, method="unconditional")[0])
    res = run(with_importance(cfg, target="pool.T0", view="allocation", default_floor=0.5, horizon=24))
    row = res.tranches.set_index(["view", "tranche"]).loc[("allocation", "T0")]
    ref = binomial_tranche_el(1, c, rho, T, 1.0, 0.0, 1.0)
    assert abs(row["el"] - ref) < 3.5 * row["el_se"], (row["el"], ref, row["el_se"])
    plain = run(cfg).tranches.set_index(["view", "tranche"]).loc[("allocation", "T0")]
    assert row["el_se"] ** 2 < plain["el_se"] ** 2 / 1.5  # the point of the tilt
    info = res.manifest["scenarios"]["base"]["importance"]
    assert info["default_floor"] == 0.5 and info["horizon"] == 24
    assert abs(info["weight_mean"] - 1.0) < 4 * info["weight_mean_se"]


def test_a_pool_with_tilted_defaults_agrees_with_the_binomial_mixture():
    """The 100-name pool of the binomial-mixture test, target 10–15% with the floor at its
    detachment's default share (0.15 / LGD 0.6): every tranche within 3.5 SE of the reference."""
    n_names, T, r, pd_, rho = 100, 60, 0.4, 0.02, 0.30
    cfg = homogeneous_config(n_names, pd_, rho, T, recovery_rate=r, points=POINTS, paths=20_000, seed=78)
    c = float(calibrate_thresholds([pd_], [rho], persistence=1.0, student_t_dof=None, method="unconditional")[0])
    res = run(with_importance(cfg, target="pool.T3", view="allocation", default_floor=0.25))
    alloc = res.tranches[res.tranches["view"] == "allocation"].set_index("tranche")
    for j, (a, d) in enumerate(POINTS):
        ref = binomial_tranche_el(n_names, c, rho, T, 1 - r, a, d)
        for col in ("el", "el_cv"):
            el, se = alloc.loc[f"T{j}", col], alloc.loc[f"T{j}", col + "_se"]
            assert abs(el - ref) < 3.5 * se, (j, col, el, ref, se)


def test_a_horizon_confines_the_shift_and_the_burst_tilt_to_its_months():
    """horizon h = 12 of 24 months, φ = 0.9, α = 0: under Q the factor level Y_t has mean m to h and
    φ^(t−h)·m after; the burst month has P_Q(B ≤ k) = 1 − (1 − h_Q)^k to h and
    1 − (1 − h_Q)^h·(1 − h)^(k−h) after (each within 4 binomial SE); the weighted frequencies of
    the same events are the model's probabilities (within 4 SE)."""
    from kernels.factor import factor_path

    d = base_dict()
    d["factor"]["persistence"] = 0.9
    cfg = make_config(d)
    h, T, hz, m, hq = cfg.factor.burst.monthly_hazard, cfg.run.months, 12, -1.5, 0.06
    src = TiltedDrawSource.for_config(with_importance(cfg, factor_shift=m, burst_hazard=hq, plain_share=0.0,
                                                      horizon=hz, strata=1))
    n = 40_000
    draws, w = src.draws(0, n), src.weights(0, n)
    X = np.empty((n, T + 1))
    for p in range(n):  # without the burst's own shift, to see the normals' shift alone
        factor_path(draws.eps[p], 0.9, math.sqrt(1 - 0.81), T + 1, 0.0, X[p])
    for t in (0, 6, hz, hz + 6, T):
        want = m if t <= hz else m * 0.9 ** (t - hz)
        assert abs(X[:, t].mean() - want) < 4 * X[:, t].std() / math.sqrt(n), (t, X[:, t].mean(), want)
    B = draws.burst_month
    for k in (3, hz, hz + 5, T):
        q = 1 - (1 - hq) ** min(k, hz) * (1 - h) ** max(k - hz, 0)
        f = (B <= k).mean()
        assert abs(f - q) < 4 * math.sqrt(q * (1 - q) / n), (k, f, q)
        x = w * (B <= k)
        assert abs(x.mean() - (1 - (1 - h) ** k)) < 4 * x.std(ddof=1) / math.sqrt(n), k
    assert abs(w.mean() - 1.0) < 4 * w.std(ddof=1) / math.sqrt(n)


def test_the_hyperion_senior_tail_scenario_agrees_with_the_base_case_and_is_tighter():
    """configs/hyperion.toml's `senior_tail` (the default tilt to 0.8 by month 138, the factor drawn
    towards the hazard) against the base case on independent seeds, 20,000 paths each: every
    tranche's EL and the deal's mean net loss within 4 combined SE, and the senior's SE at most a
    quarter of plain Monte Carlo's (a 16× smaller variance; benchmarks/variance.py measures about 78×)."""
    from pathlib import Path

    from engine import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "hyperion.toml")
    tilted, plain = run(cfg, scenario="senior_tail", paths=20_000), run(cfg, paths=20_000, seed=5)
    assert_agrees_with_plain(tilted, plain)
    se = {name: r.tranches.set_index(["tranche", "view"]).loc[("A", "cashflow"), "el_se"] for name, r in
          (("tilted", tilted), ("plain", plain))}
    assert se["tilted"] < se["plain"] / 4, se
    info = tilted.manifest["scenarios"]["senior_tail"]["importance"]
    assert info["factor_tilt"] == "hazard" and info["factor_shift"] == 0.0  # the hazard tilt's unset shift
    assert abs(info["weight_mean"] - 1.0) < 4 * info["weight_mean_se"]
