"""Mergeable statistics: exact, associative and commutative; histogram quantiles within one bin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.analytics.stats import BIN_WIDTH, LEVELS, Moments, RunStats, loss_histogram, quantile_and_es
from kernels.plan import empty_outputs

losses = hnp.arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 3)),
                    elements=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1, allow_nan=False)))


def _chunk(values: np.ndarray, seed: int) -> RunStats:
    n, k = values.shape
    out = empty_outputs(n, k, 1, 2)
    rng = np.random.default_rng(seed)
    out.tranche_loss[:] = values
    out.tranche_alloc_loss[:] = values[:, ::-1]
    out.tranche_pv[:] = rng.uniform(0, 1.1, (n, k))
    out.tranche_wal[:] = np.where(rng.uniform(size=(n, k)) < 0.2, np.nan, rng.uniform(0, 30, (n, k)))
    out.deal_net_loss[:] = values[:, :1]
    out.deal_defaults[:] = rng.integers(0, 4, (n, 1))
    out.firm_default_month[:] = rng.integers(1, 40, (n, 2))
    out.firm_own[:] = rng.integers(0, 2, (n, 2))
    out.firm_ratio[:] = np.where(out.firm_default_month <= 36, rng.uniform(0, 1, (n, 2)), np.nan)
    out.firm_caused[:] = rng.uniform(0, 2, (n, 2))
    out.cascade[:] = rng.integers(0, 3, n)
    return RunStats.of_chunk(out, max_defaults=3, horizon=36)


def _same(a: RunStats, b: RunStats):
    assert a.n_paths == b.n_paths
    for name in ("loss", "alloc", "pv", "wal", "shortfall", "net_loss", "reserve_used", "firm_ratio", "firm_caused"):
        for f in ("count", "total", "squares"):
            assert list(getattr(getattr(a, name), f)) == list(getattr(getattr(b, name), f))
    for name in ("loss_pos", "any_shortfall", "loss_hist", "alloc_hist", "net_loss_hist", "defaults_hist",
                 "firm_default", "firm_own", "cascade_hist"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


@given(losses, st.integers(0, 100))
def test_merge_is_associative_and_commutative_and_matches_one_chunk(values, seed):
    whole = _chunk(values, seed)
    a, b, c = np.array_split(np.arange(values.shape[0]), 3)
    parts = []
    for idx in (a, b, c):
        parts.append(_chunk(values[idx], seed) if idx.size else RunStats())
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[2].merge(parts[1].merge(parts[0]))
    _same(left, right)
    # the loss columns do not depend on the random pv/wal, so they match the single chunk exactly
    assert list(left.loss.total) == list(whole.loss.total)
    assert np.array_equal(left.loss_hist, whole.loss_hist)


@given(losses)
def test_fixed_point_mean_and_variance_match_numpy(values):
    m = Moments.of(values)
    np.testing.assert_allclose(m.mean(), values.mean(axis=0), rtol=0, atol=1e-12)
    if values.shape[0] > 1:
        np.testing.assert_allclose(m.variance(), values.var(axis=0, ddof=1), rtol=1e-9, atol=1e-12)


@given(hnp.arrays(np.float64, st.integers(20, 400), elements=st.floats(0, 1, allow_nan=False)))
def test_histogram_quantiles_are_within_one_bin_of_exact_ones(v):
    hist = loss_histogram(v[:, None])[0]
    for level in LEVELS:
        var, es = quantile_and_es(hist, level)
        exact = np.sort(v)[int(np.ceil(level * v.size)) - 1]  # smallest x with F(x) ≥ level
        assert abs(var - exact) <= BIN_WIDTH
        # ES from the exact empirical distribution (Acerbi–Tasche)
        s = np.sort(v)
        k = int(np.ceil(level * v.size))
        es_exact = (s[k:].sum() + (k / v.size - level) * v.size * s[k - 1]) / ((1 - level) * v.size)
        assert abs(es - es_exact) <= BIN_WIDTH


def test_histogram_bins_zero_and_one_exactly():
    hist = loss_histogram(np.array([[0.0], [1.0], [1e-9], [0.99995], [0.5]]))[0]
    assert hist[0] == 1 and hist[-1] == 1 and hist[1] == 1 and hist[5000] == 1 and hist[10000] == 1
    var, es = quantile_and_es(hist, 0.95)
    assert var == 1.0 and es == pytest.approx(1.0, abs=1e-12)


def test_out_of_range_statistic_is_a_loud_bug():
    with pytest.raises(RuntimeError):
        Moments.of(np.array([[3e9]]))  # its square is beyond 2^62


def _numpy_fixed_sum(v):
    """The exact fixed-point column sums written with numpy and Python ints (the formulation the
    jitted tally in kernels/tally.py must reproduce)."""
    whole = np.floor(v)
    frac = np.rint((v - whole) * 2.0**40).astype(np.int64)
    col = lambda q: np.array([sum(int(x) for x in q[:, j]) for j in range(q.shape[1])], dtype=object)  # noqa: E731
    return col(whole.astype(np.int64)) * (1 << 40) + col(frac)


def test_jitted_moments_and_bins_equal_the_numpy_formulation():
    from engine.analytics.stats import N_BINS, BIN_WIDTH, Moments, _month_bins, loss_histogram
    from kernels.plan import FAN_BINS

    rng = np.random.default_rng(11)
    v = np.concatenate([rng.random((300, 3)), -rng.random((50, 3)) * 1e6, rng.standard_normal((50, 3)) * 3e4])
    v[rng.random(v.shape) < 0.05] = np.nan
    v[7, 1], v[8, 2], v[9, 0] = np.inf, 0.0, 1.0
    m = Moments.of(v)
    finite = np.isfinite(v)
    z = np.where(finite, v, 0.0)
    assert list(m.count) == [int(c) for c in finite.sum(axis=0)]
    assert list(m.total) == list(_numpy_fixed_sum(z))
    assert list(m.squares) == list(_numpy_fixed_sum(z * z))
    # A chunk with no rows has zero counts and sums (the old formulation's answer).
    empty = Moments.of(np.zeros((0, 3)))
    assert list(empty.count) == [0, 0, 0] and list(empty.total) == [0, 0, 0] and list(empty.squares) == [0, 0, 0]
    # A 3-d array is tallied per trailing cell.
    cube = rng.random((40, 2, 3))
    assert Moments.of(cube).total.shape == (2, 3)
    assert list(Moments.of(cube).total.ravel()) == list(_numpy_fixed_sum(cube.reshape(40, 6)))

    loss = np.clip(rng.random((500, 2)) * 1.2 - 0.1, 0.0, None)
    loss[3, 0] = np.nan
    loss[4, 1] = 1e-4  # exactly on a bin edge: bin 1
    idx = np.clip(np.ceil(loss / BIN_WIDTH), 1, N_BINS - 2)
    idx = np.where(loss <= 0.0, 0, np.where(loss >= 1.0, N_BINS - 1, idx))
    want = np.stack([np.bincount(idx[:, j][np.isfinite(loss[:, j])].astype(np.int64), minlength=N_BINS) for j in range(2)])
    np.testing.assert_array_equal(loss_histogram(loss), want)

    bins = rng.integers(0, FAN_BINS, (200, 13)).astype(np.int16)
    want = np.stack([np.bincount(bins[:, t], minlength=FAN_BINS) for t in range(13)])
    np.testing.assert_array_equal(_month_bins(bins), want)


def test_a_statistic_beyond_two_to_the_62_is_a_bug_not_a_wrong_sum():
    from engine.analytics.stats import Moments

    with pytest.raises(RuntimeError, match="beyond 2"):
        Moments.of(np.array([[1.0], [2.0**31 + 1.0]]) ** 2)
