"""Each kernel against a plain-Python twin or a naive oracle on small inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from kernels.collateral import facility_depreciation, gpu_depreciation, value_indices
from kernels.credit import (
    HAZARD_PER_UNIT,
    HAZARD_Z0,
    HAZARD_Z1,
    class_cumulative_hazard,
    default_month,
    hazard_step,
    hazard_step_exact,
    hazard_table,
    norm_cdf,
)
from kernels.factor import factor_path
from kernels.plan import CollateralPlan

finite = dict(allow_nan=False, allow_infinity=False)


@given(st.floats(-38, 38, **finite))
def test_norm_cdf_matches_scipy_in_both_tails(x):
    assert norm_cdf(x) == pytest.approx(special.ndtr(x), rel=1e-12, abs=1e-300)


@given(st.floats(0, 1, **finite), st.integers(1, 40), st.floats(-2, 0, **finite), st.integers(1, 45), st.integers(0, 2**32))
def test_factor_path_matches_direct_recursion(phi, T, shift, burst, seed):
    eps = np.random.default_rng(seed).standard_normal(T + 1)
    out = np.empty(T + 1)
    factor_path(eps, phi, math.sqrt(1 - phi * phi), burst, shift, out)
    y = [eps[0]]
    for t in range(1, T + 1):
        y.append(phi * y[-1] + math.sqrt(1 - phi * phi) * eps[t])
    expected = [y[t] + (shift if t >= burst else 0.0) for t in range(T + 1)]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    if phi == 1.0:
        assert np.all(out[1:] - (shift * (np.arange(1, T + 1) >= burst)) == eps[0])


def test_tabulated_hazard_step_matches_log_ndtr_to_1e_13_across_and_beyond_its_range():
    """−ln Φ(−z) from the table against scipy's log_ndtr: on every grid node, at the midpoints (where a
    cubic's error peaks), at 200,000 random points from below the table to above it, and at its edges."""
    table = hazard_table()
    assert table.shape == (round((HAZARD_Z1 - HAZARD_Z0) * HAZARD_PER_UNIT), 4)
    nodes = HAZARD_Z0 + np.arange(table.shape[0] + 1) / HAZARD_PER_UNIT
    rng = np.random.default_rng(5)
    z = np.concatenate([nodes, nodes[:-1] + 0.5 / HAZARD_PER_UNIT, rng.uniform(-30.0, 30.0, 200_000),
                        [HAZARD_Z0, np.nextafter(HAZARD_Z0, -1), np.nextafter(HAZARD_Z1, -1), HAZARD_Z1, 0.0, -0.0]])
    got = np.array([hazard_step(x, table) for x in z])
    ref = -special.log_ndtr(-z)
    finite = ref < 700.0  # Φ(−z) underflows near z = 38.5: the step is +inf there (below)
    assert np.isfinite(got[finite]).all()
    rel = np.abs(got[finite] / ref[finite] - 1.0)
    assert rel.max() < 2e-13, z[finite][rel.argmax()]
    assert (got[~finite] == np.inf).all()
    assert hazard_step(-np.inf, table) == 0.0  # PD 0
    assert hazard_step(np.inf, table) == np.inf
    assert math.isnan(hazard_step(np.nan, table))


def test_hazard_step_is_accurate_where_one_minus_q_cancels():
    """At z = 6, 1 − Φ(z) = 9.9e-10 keeps 7 digits in double: −ln1p(−Φ(z)) is off by 3e-9 relative; the
    exact branch and the table are not."""
    z = 6.0
    ref = -special.log_ndtr(-z)
    assert abs(-math.log1p(-special.ndtr(z)) / ref - 1.0) > 1e-10
    assert hazard_step_exact(z) == pytest.approx(ref, rel=1e-15)
    assert hazard_step(z, hazard_table()) == pytest.approx(ref, rel=2e-13)


@given(st.integers(1, 30), st.integers(0, 2**32))
def test_cumulative_hazard_and_default_month_match_a_naive_monthly_loop(T, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(T + 1)
    c = np.array([-2.5, -1.0, -np.inf, 0.5])
    rho = np.array([0.2, 0.0, 0.3, 0.6])
    winv = float(rng.uniform(0.5, 1.5))
    H = np.empty((4, T + 1))
    class_cumulative_hazard(X, c, np.sqrt(rho), 1 / np.sqrt(1 - rho), winv, hazard_table(), H)
    for k in range(4):
        acc = 0.0
        for t in range(1, T + 1):
            # −ln(1 − q) = −ln Φ(−z), by scipy's log_ndtr (accurate where 1 − q cancels)
            acc += -special.log_ndtr(-(c[k] * winv - math.sqrt(rho[k]) * X[t]) / math.sqrt(1 - rho[k]))
            assert H[k, t] == pytest.approx(acc, rel=2e-13, abs=1e-300)
        for e in rng.exponential(size=20):
            naive = next((t for t in range(1, T + 1) if H[k, t] >= e), T + 1)
            assert default_month(H[k], e) == naive


def test_default_month_edges():
    H = np.array([0.0, 0.1, 0.1, 0.5, 2.0])
    assert default_month(H, 0.0) == 1  # a zero draw defaults at the first month with any hazard
    assert default_month(H, 0.1) == 1
    assert default_month(H, 0.10001) == 3
    assert default_month(H, 2.0) == 4
    assert default_month(H, 2.5) == 5  # never within T = 4


@given(st.floats(0, 100, **finite), st.sampled_from([0, 1]), st.floats(1, 60, **finite), st.floats(1, 40, **finite), st.floats(0, 1, **finite))
def test_gpu_depreciation_matches_the_formulas(age, curve, life, half_life, salvage):
    got = gpu_depreciation(age, curve, life, half_life, salvage)
    if curve == 0:
        expected = max(salvage, 1 - (1 - salvage) * age / life)
    else:
        expected = salvage + (1 - salvage) * 2 ** (-age / half_life)
    assert got == pytest.approx(expected, rel=1e-12)
    assert salvage - 1e-12 <= got <= 1 + 1e-12
    assert gpu_depreciation(-5.0, curve, life, half_life, salvage) == gpu_depreciation(0.0, curve, life, half_life, salvage)


def test_facility_depreciation():
    assert facility_depreciation(0.0, 300.0) == 1.0
    assert facility_depreciation(150.0, 300.0) == 0.5
    assert facility_depreciation(400.0, 300.0) == 0.0


@pytest.mark.parametrize("poisson", [False, True])
def test_value_indices_match_the_formulas(poisson):
    T = 24
    rng = np.random.default_rng(3)
    X = rng.standard_normal(T + 1)
    counts = rng.poisson(0.3, T + 1).astype(np.int32)
    sched = 0.9 ** (np.arange(T + 1) >= 6).cumsum().clip(0, 3)
    col = CollateralPlan(0, 30.0, 12.0, 0.05, 0.1, poisson, 0.4, 0.2, 0.7, 300.0, np.ones(T + 1) if poisson else sched)
    g, s, m = np.empty(T + 1), np.empty(T + 1), np.empty(T + 1)
    value_indices(X, counts, col, g, s, m)
    O = 0.9 ** np.concatenate([[0], np.cumsum(counts[1:])]) if poisson else sched
    np.testing.assert_allclose(g, O * np.exp(0.4 * X - 0.08), rtol=1e-12)
    np.testing.assert_allclose(s, np.exp(0.2 * X - 0.02), rtol=1e-12)
    # docs/model.md §3: market-rent index m_t = O_t·exp(β_r X_t − β_r²/2), β_r = 0.7 here.
    np.testing.assert_allclose(m, O * np.exp(0.7 * X - 0.245), rtol=1e-12)
