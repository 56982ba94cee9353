"""The counter-based generator (kernels/philox.py, kernels/draws.py, engine/plan/rng.py).

* Philox4x32-10 against the published Random123 known-answer vectors and an independent,
  slow pure-Python Philox written from the paper's definition.
* The 52-bit uniforms (exact formula, the open interval), the AS241 inverse normal CDF against
  scipy's ndtri, and statistical smoke tests of every variate the kernel draws (uniforms, normals,
  tenants' exponentials, Gamma, Poisson, the t-copula's chi-square, the burst month). Tolerances
  are multiples of standard errors computed from the known laws; thresholds of chi-square and KS
  tests come from scipy at a 1e-6 level; seeds are fixed.
* The counter layout (j, stream, path low, path high) under the key (seed low, seed high): the
  written-out draws equal an independent reconstruction, ranges are rows of bigger ranges,
  adding a tenant, a month or a feature leaves the other draws where they were.
* The kernel's own draws equal the written-out draws bit for bit on every PathOutputs field, for
  plain, t-copula, Poisson-release, option-lease, static-factor and importance-sampled configs.
* The survivor shortcut of ``tenant_defaults`` against the logarithm at exp(−H_T).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import special, stats

from builders import base_dict, make_config, stressed, stressed_base, with_importance, with_options
from engine.plan.compile import compile_plan
from engine.plan.rng import DrawSource, TiltedDrawSource, _plan
from engine.simulation.execute import simulate, simulate_draws
from kernels.credit import default_month
from kernels.draws import (STREAM_BURST, STREAM_DEFAULT, STREAM_FACTOR, STREAM_LEASE_KEY, STREAM_MIXTURE,
                           STREAM_RELEASES, STREAM_TCOPULA, SURVIVOR_MARGIN, class_survival,
                           tenant_defaults)
from kernels.philox import (gamma_variate, norm_ppf, philox4x32, poisson_variate, to_unit, uniform_at, uniform_pair,
                            word64)

M32 = 0xFFFFFFFF
U64 = np.uint64
Z = 5.0  # statistical tolerances: 5 standard errors (two-sided p ≈ 6e-7 per check)
P_LEVEL = 1e-6  # chi-square and KS tests: reject below this p-value / above this quantile

# ----------------------------------------------------------------------------- independent references


def ref_philox(ctr, key):
    """Philox4x32-10 from Salmon et al. (SC 2011): per round, with the two 32×32→64 products
    p0 = 0xD2511F53·c0 and p1 = 0xCD9E8D57·c2, the new counter is
    (hi(p1) ⊕ c1 ⊕ k0, lo(p1), hi(p0) ⊕ c3 ⊕ k1, lo(p0)); the key is bumped by the Weyl
    constants (0x9E3779B9, 0xBB67AE85) after each of the 10 rounds."""
    c0, c1, c2, c3 = (int(x) for x in ctr)
    k0, k1 = (int(x) for x in key)
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, p0 & M32
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def ref_philox_inverse(out, key):
    """The counter whose Philox4x32-10 block under ``key`` is ``out`` (each round is a bijection:
    lo(M·c) determines c since M is odd)."""
    k0, k1 = (int(x) for x in key)
    keys = []
    for _ in range(10):
        keys.append((k0, k1))
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    inv0, inv1 = pow(0xD2511F53, -1, 2**32), pow(0xCD9E8D57, -1, 2**32)
    c0, c1, c2, c3 = (int(x) for x in out)
    for k0, k1 in reversed(keys):
        x2, x0 = (c1 * inv1) & M32, (c3 * inv0) & M32
        c0, c1, c2, c3 = x0, c0 ^ ((0xCD9E8D57 * x2) >> 32) ^ k0, x2, c2 ^ ((0xD2511F53 * x0) >> 32) ^ k1
    return c0, c1, c2, c3


def ref_unit(a: int, b: int) -> float:
    """(k + ½)/2^52 with k = (a>>6)·2^26 + (b>>6), correctly rounded (Python's int true division)."""
    k = ((a >> 6) << 26) | (b >> 6)
    return (2 * k + 1) / 2**53


def ref_block(seed: int, stream: int, path: int, j: int):
    """The four words of block j of ``stream`` on ``path``: counter (j, stream, path lo, path hi), key = seed words."""
    return ref_philox((j, stream, path & M32, path >> 32), (seed & M32, (seed >> 32) & M32))


def ref_uniform(seed: int, stream: int, path: int, i: int) -> float:
    a, b, c, d = ref_block(seed, stream, path, i >> 1)
    return ref_unit(a, b) if i % 2 == 0 else ref_unit(c, d)


def _keys(seed: int):
    return U64(seed & M32), U64((seed >> 32) & M32)


# Bulk drivers of the engine's own jitted functions (the functions under test, called in a loop).

@numba.njit
def _uniform_grid(k0, k1, streams, path0, n_blocks, out):
    """out[p, s, 2j + h] = half h of block j of streams[s] on path path0 + p."""
    for p in range(out.shape[0]):
        for s in range(streams.shape[0]):
            for j in range(n_blocks):
                u0, u1 = uniform_pair(k0, k1, streams[s], path0 + p, j)
                out[p, s, 2 * j] = u0
                out[p, s, 2 * j + 1] = u1


@numba.njit
def _norm_ppf_vec(u, out):
    for i in range(u.shape[0]):
        out[i] = norm_ppf(u[i])


@numba.njit
def _gammas(k0, k1, stream, shape, out):
    for p in range(out.shape[0]):
        out[p] = gamma_variate(k0, k1, stream, p, shape)


def _source(seed=11, months=59, tenants=4, *, hazard=0.02, nu=None, rate=None, static=False, burst_month=None):
    return DrawSource(seed, months, tenants, burst_hazard=hazard, burst_month=burst_month, student_t_dof=nu,
                      poisson_rate=rate, static_factor=static)


def _assert_draws_equal(a, b):
    for name in a._fields:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
        assert x.tobytes() == y.tobytes(), name


# ----------------------------------------------------------------------------- 1. Philox4x32-10

KAT = [  # tests/kat_vectors of DEShawResearch/random123: philox4x32 10 rounds, ctr c0..c3, key k0 k1 -> out
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_matches_the_random123_known_answers(ctr, key, expected):
    got = philox4x32(*(U64(x) for x in ctr), *(U64(x) for x in key))
    assert tuple(int(x) for x in got) == expected
    assert ref_philox(ctr, key) == expected  # the reference below is right too


def test_philox_matches_an_independent_pure_python_philox():
    rng = np.random.default_rng(20240601)
    words = rng.integers(0, 2**32, size=(200, 6), dtype=np.uint64)
    words[:10, :4] = np.arange(10, dtype=np.uint64)[:, None]  # small counters, as the engine uses them
    words[10:20] = M32 - np.arange(10, dtype=np.uint64)[:, None]
    for row in words:
        got = philox4x32(*(U64(x) for x in row))
        want = ref_philox(row[:4], row[4:])
        assert tuple(int(x) for x in got) == want, row
        assert all(0 <= int(x) <= M32 for x in got)
        assert ref_philox_inverse(want, row[4:]) == tuple(int(x) for x in row[:4])


def test_uniform_pair_and_word64_are_the_documented_counter_layout():
    """Counter (j, stream, path low word, path high word) under key (seed low, seed high) — paths
    beyond 2^32 and seeds beyond 2^32 included, so both high words are checked."""
    rng = np.random.default_rng(3)
    cases = [(11, 0, 0, 0), (11, 6, 2**32 - 1, 7), (11, 1, 2**32, 0), (11, 1, 2**32 + 5, 3),
             (2**40 + 17, 2, 12345, 1), (2**63 - 1, 5, 2**62 + 99, 2)]
    cases += [(int(rng.integers(0, 2**63)), int(rng.integers(0, 7)), int(rng.integers(0, 2**40)), int(rng.integers(0, 64)))
              for _ in range(40)]
    for seed, stream, path, j in cases:
        k0, k1 = _keys(seed)
        a, b, c, d = ref_block(seed, stream, path, j)
        assert uniform_pair(k0, k1, stream, path, j) == (ref_unit(a, b), ref_unit(c, d))
        assert uniform_at(k0, k1, stream, path, 2 * j) == ref_unit(a, b)
        assert uniform_at(k0, k1, stream, path, 2 * j + 1) == ref_unit(c, d)
        if j == 0:
            a0, b0, _, _ = ref_block(seed, stream, path, 0)
            assert int(word64(k0, k1, stream, path)) == (a0 << 32) | b0
    # the high words matter: path p and p + 2^32, seed s and s + 2^32 are different numbers
    k0, k1 = _keys(11)
    assert uniform_pair(k0, k1, 0, 5, 0) != uniform_pair(k0, k1, 0, 5 + 2**32, 0)
    assert uniform_pair(k0, k1, 0, 5, 0) != uniform_pair(*_keys(11 + 2**32), 0, 5, 0)


# ----------------------------------------------------------------------------- 2. to_unit


EXTREME_WORDS = [0, 1, 31, 32, 63, 64, 2**31, 0xFFFFFFBF, 0xFFFFFFC0, 0xFFFFFFDF, 0xFFFFFFE0, M32 - 1, M32]


def test_to_unit_is_the_exact_52_bit_formula():
    """to_unit(a, b) is (k + ½)/2^52 with k = (a>>6)·2^26 + (b>>6), exactly, for random and extreme
    words; the all-zero words give 2^-53 > 0, and every value is < 1."""
    rng = np.random.default_rng(8)
    pairs = [(a, b) for a in EXTREME_WORDS for b in EXTREME_WORDS]
    pairs += [tuple(int(x) for x in r) for r in rng.integers(0, 2**32, size=(2000, 2), dtype=np.uint64)]
    for a, b in pairs:
        u = to_unit(U64(a), U64(b))
        assert u == ref_unit(a, b), (hex(a), hex(b))
        assert 0.0 < u < 1.0, (hex(a), hex(b))
    assert to_unit(U64(0), U64(0)) == 2.0**-53
    # the 52 bits are distinct: the lowest 6 bits of a and b are dropped, one step of k is 2^-52
    assert to_unit(U64(0), U64(64)) - to_unit(U64(0), U64(0)) == 2.0**-52
    assert to_unit(U64(0), U64(63)) == to_unit(U64(0), U64(0))
    assert to_unit(U64(64), U64(0)) == (2**26 + 0.5) / 2**52


def test_to_unit_is_strictly_below_one_for_all_one_words():
    """With 53 bits, (2^53 − 1) + ½ rounded to 2^53: a uniform of exactly 1, a NaN normal (found by
    this test). With 52 bits the top value is 1 − 2^-53."""
    assert to_unit(U64(M32), U64(M32)) == 1.0 - 2.0**-53
    # a real block that produces these words: the counter found by inverting Philox under seed 11
    j, stream, lo, hi = ref_philox_inverse((M32, M32, M32, M32), (11, 0))
    assert ref_philox((j, stream, lo, hi), (11, 0)) == (M32, M32, M32, M32)
    u0, u1 = uniform_pair(U64(11), U64(0), U64(stream), U64(lo | (hi << 32)), U64(j))
    assert u0 < 1.0 and u1 < 1.0
    assert math.isfinite(norm_ppf(u0))


# ----------------------------------------------------------------------------- 3. norm_ppf

# Measured on dense grids (2e5 points per region) against scipy.special.ndtri: max relative
# difference 1.02e-15 (at u ≈ 0.86), 99th percentile 5e-16. A relative change of 1e-10 in any of
# AS241's coefficients (1e-6 in the two tiny leading ones of the tail polynomials' denominators)
# pushes the difference above 4e-15.
NDTRI_RTOL = 4e-15


def _ppf(u):
    out = np.empty_like(u)
    _norm_ppf_vec(np.ascontiguousarray(u), out)
    return out


def test_norm_ppf_agrees_with_ndtri_over_both_tails_and_the_centre():
    lower = np.logspace(-300, math.log10(0.5), 8001)  # covers r > 5 (u < e^-25), 1.6 < r ≤ 5 and the centre
    centre = np.linspace(0.075, 0.925, 8001)  # |u − ½| ≤ 0.425 and just beyond
    upper = 1.0 - np.logspace(-16, math.log10(0.5), 8001)  # down to 1 − 2^-53
    u = np.concatenate([lower, centre, upper, [5e-324, 2.2250738585072014e-308, 0.075, 0.925, 0.5 - 2**-30]])
    u = u[u != 0.5]
    x, ref = _ppf(u), special.ndtri(u)
    rel = np.abs(x - ref) / np.abs(ref)
    assert rel.max() <= NDTRI_RTOL, (rel.max(), u[rel.argmax()])
    assert norm_ppf(0.5) == 0.0
    assert np.all(np.diff(_ppf(np.sort(u))) >= 0)  # monotone on the grid
    # each branch was exercised: centre, 1.6 < r ≤ 5, r > 5
    r = np.sqrt(-np.log(np.minimum(u, 1 - u)))
    assert (np.abs(u - 0.5) <= 0.425).sum() > 1000 and ((r > 1.6) & (r <= 5)).sum() > 1000 and (r > 5).sum() > 1000


def test_norm_ppf_is_odd_where_one_minus_u_is_exact():
    rng = np.random.default_rng(4)
    u = np.concatenate([
        rng.integers(1, 2**30, 5000) / 2.0**30,  # dyadic: 1 − u exact
        2.0 ** -np.arange(2, 53),  # down to 2^-52
        [0.075, 0.0750000000000001, 0.425 + 0.5, 1e-300],
    ])
    u = u[(1.0 - (1.0 - u)) == u]
    assert u.size > 5000
    np.testing.assert_array_equal(_ppf(1.0 - u), -_ppf(u))


# ----------------------------------------------------------------------------- 4. statistics


def _within(value, expected, se, what):
    assert abs(value - expected) < Z * se, (what, value, expected, se)


def _corr_ok(x, y, what):
    x, y = np.ravel(x), np.ravel(y)
    r = np.corrcoef(x, y)[0, 1]
    _within(r, 0.0, 1.0 / math.sqrt(x.size), what)


def _chi2_ok(counts, expected, what):
    counts, expected = np.ravel(counts), np.ravel(expected)
    stat = float(((counts - expected) ** 2 / expected).sum())
    limit = stats.chi2.ppf(1 - P_LEVEL, counts.size - 1)
    assert stat < limit, (what, stat, limit)


def test_uniforms_mean_variance_chi_square_and_lag_correlations():
    """2,000 paths × all 7 streams × 32 uniforms (448,000): mean ½ and variance 1/12 within 5 SE,
    100-bin and 20×20 (pairs of a block) chi-square, and no lag-1 correlation between consecutive
    draws of a stream, neighbouring paths, neighbouring streams and neighbouring seeds."""
    k0, k1 = _keys(20251022)
    n_paths, n_blocks, streams = 2000, 16, np.arange(7, dtype=np.int64)
    U = np.empty((n_paths, streams.size, 2 * n_blocks))
    _uniform_grid(k0, k1, streams, 0, n_blocks, U)
    u = U.ravel()
    n = u.size
    assert 0.0 < u.min() and u.max() < 1.0
    assert np.unique(u).size == n
    _within(u.mean(), 0.5, math.sqrt(1 / 12 / n), "mean")
    _within(((u - 0.5) ** 2).mean(), 1 / 12, math.sqrt(1 / 180 / n), "variance")  # Var((U−½)²) = 1/80 − 1/144
    _chi2_ok(np.histogram(u, bins=100, range=(0, 1))[0], np.full(100, n / 100), "100 bins")
    for s in streams:  # each stream on its own
        us = U[:, s].ravel()
        _chi2_ok(np.histogram(us, bins=50, range=(0, 1))[0], np.full(50, us.size / 50), f"stream {s}")
    pairs = np.histogram2d(U[..., 0::2].ravel(), U[..., 1::2].ravel(), bins=20, range=[[0, 1], [0, 1]])[0]
    _chi2_ok(pairs, np.full((20, 20), n / 2 / 400), "pairs of a block")
    _corr_ok(U[..., :-1], U[..., 1:], "consecutive draws i, i+1")
    _corr_ok(U[..., 0:-2:2], U[..., 2::2], "first halves of blocks j, j+1")
    _corr_ok(U[:-1], U[1:], "neighbouring paths")
    _corr_ok(U[:, :-1], U[:, 1:], "neighbouring streams")
    other = np.empty((200, 1, 2 * n_blocks))
    _uniform_grid(*_keys(20251023), streams[:1], 0, n_blocks, other)
    _corr_ok(U[:200, :1], other, "neighbouring seeds")
    # paths across the 2^32 boundary of the counter's low word are as good
    W = np.empty((2000, 1, 8))
    _uniform_grid(k0, k1, streams[:1], 2**32 - 1000, 4, W)
    _within(W.mean(), 0.5, math.sqrt(1 / 12 / W.size), "mean across 2^32")
    _corr_ok(W[:-1], W[1:], "neighbouring paths across 2^32")


def test_factor_normals_moments_bins_tails_and_lag_correlations():
    """The written-out factor normals of 4,000 paths × 60 months (240,000): mean, variance,
    skewness and excess kurtosis within 5 SE of 0, 1, 0, 0 (SEs 1, √2, √6, √24 over √n), 100
    equal-probability bins, the tail frequency beyond ±3, and no lag-1 correlation in t or in path."""
    src = _source(seed=424242, months=59, hazard=0.0)
    eps = src.draws(0, 4000).eps
    x = eps.ravel()
    n = x.size
    _within(x.mean(), 0.0, 1 / math.sqrt(n), "mean")
    _within(x.var(), 1.0, math.sqrt(2 / n), "variance")
    _within(stats.skew(x), 0.0, math.sqrt(6 / n), "skewness")
    _within(stats.kurtosis(x), 0.0, math.sqrt(24 / n), "excess kurtosis")
    edges = special.ndtri(np.linspace(0, 1, 101))
    _chi2_ok(np.histogram(x, bins=edges)[0], np.full(100, n / 100), "normal bins")
    p3 = 2 * special.ndtr(-3.0)
    _within((np.abs(x) > 3).mean(), p3, math.sqrt(p3 * (1 - p3) / n), "P(|Z| > 3)")
    _corr_ok(eps[:, :-1], eps[:, 1:], "consecutive months")
    _corr_ok(eps[:-1], eps[1:], "neighbouring paths")
    _corr_ok(eps[:, 0::2], eps[:, 1::2], "the two halves of a block")  # 60 normals: 30 blocks


def test_tenant_exponentials_as_drawn():
    """expo = −ln U of the DEFAULT stream for 4,000 paths × 25 tenants: mean 1 and variance 1 within
    5 SE (central 4th moment 9), P(E > 4) = e^-4, KS against Exp(1), no correlation between
    neighbouring tenants or paths."""
    expo = _source(seed=5150, months=12, tenants=25).draws(0, 4000).expo
    e = expo.ravel()
    n = e.size
    assert e.min() > 0.0 and np.isfinite(e).all()
    _within(e.mean(), 1.0, 1 / math.sqrt(n), "mean")
    _within(e.var(), 1.0, math.sqrt(8 / n), "variance")
    _within((e > 4).mean(), math.exp(-4), math.sqrt(math.exp(-4) * (1 - math.exp(-4)) / n), "P(E > 4)")
    assert stats.kstest(e, "expon").pvalue > P_LEVEL
    _corr_ok(expo[:, :-1], expo[:, 1:], "neighbouring tenants")
    _corr_ok(expo[:-1], expo[1:], "neighbouring paths")


@pytest.mark.parametrize("shape", [0.5, 2.5, 10.0])
def test_gamma_variate_mean_variance_and_ks(shape):
    """20,000 Gamma(shape) draws (Marsaglia–Tsang; the boost for shape < 1): mean and variance
    within 5 SE (Var of the sample variance (μ4 − σ⁴)/n = (2k² + 6k)/n), KS against scipy's gamma."""
    out = np.empty(20_000)
    _gammas(*_keys(77), STREAM_TCOPULA, shape, out)
    n = out.size
    assert out.min() > 0.0
    _within(out.mean(), shape, math.sqrt(shape / n), "mean")
    _within(out.var(), shape, math.sqrt((2 * shape**2 + 6 * shape) / n), "variance")
    assert stats.kstest(out, stats.gamma(shape).cdf).pvalue > P_LEVEL


def test_t_copula_mixing_variable_is_chi_square_over_nu():
    """winv = 1/sqrt(W) as drawn: ν·winv² ~ χ²(ν) (KS), for ν = 4 and ν = 1 (shape ½)."""
    for nu in (4.0, 1.0):
        winv = _source(seed=9, months=6, nu=nu).draws(0, 20_000).winv
        chi2 = nu * winv**2
        assert stats.kstest(chi2, stats.chi2(nu).cdf).pvalue > P_LEVEL, nu
        _within(chi2.mean(), nu, math.sqrt(2 * nu / chi2.size), f"E chi2 nu={nu}")


@pytest.mark.parametrize("rate", [0.04, 3.0])
def test_poisson_releases_mean_variance_and_frequencies(rate):
    """Chip releases as drawn (4,000 paths × 60 months): mean and variance of Poisson(rate) within
    5 SE (Var of the sample variance (λ + 2λ²)/n), chi-square on the frequencies."""
    counts = _source(seed=31337, months=59, rate=rate).draws(0, 4000).release_counts.ravel()
    n = counts.size
    _within(counts.mean(), rate, math.sqrt(rate / n), "mean")
    _within(counts.var(), rate, math.sqrt((rate + 2 * rate**2) / n), "variance")
    top = int(stats.poisson.ppf(1 - 1e-4, rate))
    observed = np.bincount(np.minimum(counts, top + 1), minlength=top + 2)
    pmf = stats.poisson.pmf(np.arange(top + 1), rate)
    expected = n * np.append(pmf, 1 - pmf.sum())
    keep = expected >= 5  # merge sparse cells into the tail
    obs = np.append(observed[keep], observed[~keep].sum())
    exp_ = np.append(expected[keep], expected[~keep].sum())
    if exp_[-1] < 5:
        obs, exp_ = np.append(obs[:-2], obs[-2:].sum()), np.append(exp_[:-2], exp_[-2:].sum())
    _chi2_ok(obs, exp_, f"Poisson({rate}) frequencies")


def test_poisson_variate_is_inversion_of_the_cdf():
    """poisson_variate(u, λ) = min{k : F(k) ≥ u}, scipy's ppf, away from the CDF's steps."""
    rng = np.random.default_rng(12)
    for rate in (0.04, 1 / 18, 3.0, 10.0):
        u = rng.random(3000)
        cdf = stats.poisson.cdf(np.arange(60), rate)
        near = np.min(np.abs(u[:, None] - cdf[None, :]), axis=1) < 1e-12
        for x in u[~near]:
            assert poisson_variate(float(x), rate) == int(stats.poisson.ppf(x, rate)), (x, rate)


def test_burst_month_is_geometric():
    """B as drawn with hazard h = 0.05 over T = 59 months: P(B = t) = (1−h)^(t−1)·h, T+1 for none (chi-square)."""
    h, T = 0.05, 59
    b = _source(seed=1, months=T, hazard=h).draws(0, 20_000).burst_month
    assert b.min() >= 1 and b.max() <= T + 1
    t = np.arange(1, T + 1)
    p = np.append((1 - h) ** (t - 1) * h, (1 - h) ** T)
    _chi2_ok(np.bincount(b, minlength=T + 2)[1:], b.size * p, "burst month")


# ----------------------------------------------------------------------------- 5. kernel == written-out draws


def _cfg_plain():
    return make_config()


def _cfg_t():
    d = stressed(base_dict())
    d["factor"]["student_t_dof"] = 4.0
    return make_config(d)


def _cfg_poisson():
    d = base_dict()
    d["gpu"].update(releases="poisson", generation_interval_months=6, obsolescence_haircut=0.2)
    return make_config(d)


def _cfg_options():
    d = with_options(stressed_base())
    d["factor"]["student_t_dof"] = 5.0
    d["gpu"].update(releases="poisson", generation_interval_months=9)
    return make_config(d)


def _cfg_static():
    d = stressed(base_dict())
    d["factor"]["persistence"] = 1.0
    return make_config(d)


CONFIGS = {
    "plain": (_cfg_plain, None),
    "t_copula": (_cfg_t, None),
    "poisson": (_cfg_poisson, None),
    "options_t_poisson": (_cfg_options, None),
    "static_factor": (_cfg_static, None),
    "importance": (_cfg_plain, dict(factor_shift=-1.5, burst_hazard=0.06, plain_share=0.0)),
    "importance_mixture_options": (_cfg_options, dict(factor_shift=-1.0, burst_hazard=0.05, plain_share=0.2)),
    "importance_static_shift_only": (_cfg_static, dict(factor_shift=-2.0, plain_share=0.1)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_draws_equal_the_written_out_draws_bit_for_bit(name):
    """simulate(plan, source, a, b), where the kernel draws each path, equals simulate_draws on
    source.draws(a, b) on every PathOutputs field but the weight and the control, with a = 1234 (the path index is
    honoured) and 300 paths (more than one kernel task). Under importance sampling the kernel's
    weights equal source.weights(a, b); a plain source's are all ones."""
    make, imp = CONFIGS[name]
    cfg = make()
    if imp is not None:
        cfg = with_importance(cfg, **imp)
        source = TiltedDrawSource.for_config(cfg)
    else:
        source = DrawSource.for_config(cfg)
    plan = compile_plan(cfg)
    a, b = 1234, 1534
    drawn = simulate(plan, source, a, b)
    draws = source.draws(a, b)
    read = simulate_draws(plan, draws)
    for field in drawn._fields:
        if field in ("weight", "deal_control"):  # an importance-sampled run's (test_importance.py checks the control)
            continue
        x, y = getattr(drawn, field), getattr(read, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        np.testing.assert_array_equal(x, y, err_msg=field)
        assert x.tobytes() == y.tobytes(), field
    if imp is None:
        assert source.weights(a, b) is None
        assert np.all(drawn.weight == 1.0)
    else:
        w = source.weights(a, b)
        assert w.dtype == drawn.weight.dtype and w.tobytes() == drawn.weight.tobytes()
        assert np.unique(w).size > 100  # really weighted
    # the comparison has teeth: paths differ, some lose, and other paths would give other outputs
    assert np.unique(drawn.deal_net_loss).size > 30
    assert (drawn.deal_defaults > 0).any() and (drawn.deal_defaults == 0).any()
    shifted = simulate_draws(plan, source.draws(0, b - a))
    assert not np.array_equal(shifted.deal_net_loss, drawn.deal_net_loss)
    # the features are on
    if cfg.gpu.releases == "poisson":
        assert draws.release_counts.shape == (b - a, cfg.run.months + 1) and draws.release_counts.sum() > 0
    if cfg.factor.student_t_dof is not None:
        assert np.unique(draws.winv).size == b - a
    if cfg.factor.persistence >= 1.0:
        assert (draws.eps[:, 1:] == 0).all()
    if name.startswith("options"):
        assert (drawn.deal_renewals > 0).any()


# ----------------------------------------------------------------------------- 6. counter properties


def test_a_range_is_the_rows_of_a_bigger_range():
    src = _source(seed=606, months=24, tenants=5, nu=3.0, rate=0.2)
    whole = src.draws(0, 10)
    part = src.draws(5, 10)
    _assert_draws_equal(part, type(whole)(*(x[5:10] for x in whole)))
    one = src.draws(7, 8)
    _assert_draws_equal(one, type(whole)(*(x[7:8] for x in whole)))
    # and far away paths, across the 2^32 boundary of the counter
    far = src.draws(2**32 - 3, 2**32 + 3)
    _assert_draws_equal(src.draws(2**32, 2**32 + 2), type(far)(*(x[3:5] for x in far)))
    assert not np.array_equal(far.eps[3], whole.eps[0])  # path 2^32 is not path 0


def test_written_out_draws_equal_an_independent_reconstruction():
    """Every field of DrawSource.draws rebuilt from the pure-Python Philox: eps[t] = Φ⁻¹(uniform t of
    FACTOR), expo[i] = −ln(uniform i of DEFAULT), B from uniform 0 of BURST by inversion, the
    release counts from uniform t of RELEASES, the lease key = words 0‖1 of block 0 of LEASE_KEY,
    winv from Gamma(ν/2) on TCOPULA."""
    seed, T, N, h, rate, nu = 2**33 + 12345, 18, 5, 0.04, 0.3, 6.0
    src = _source(seed=seed, months=T, tenants=N, hazard=h, nu=nu, rate=rate)
    k0, k1 = _keys(seed)
    for start in (0, 977, 2**32 + 1):
        d = src.draws(start, start + 3)
        for r in range(3):
            path = start + r
            uf = [ref_uniform(seed, STREAM_FACTOR, path, t) for t in range(T + 1)]
            assert d.eps[r].tolist() == [norm_ppf(u) for u in uf]
            np.testing.assert_allclose(d.eps[r], special.ndtri(uf), rtol=NDTRI_RTOL, atol=0)
            assert d.expo[r].tolist() == [-math.log(ref_uniform(seed, STREAM_DEFAULT, path, i)) for i in range(N)]
            ub = ref_uniform(seed, STREAM_BURST, path, 0)
            assert d.burst_month[r] == min(max(math.ceil(math.log1p(-ub) / math.log1p(-h)), 1), T + 1)
            assert d.release_counts[r].tolist() == [
                int(stats.poisson.ppf(ref_uniform(seed, STREAM_RELEASES, path, t), rate)) for t in range(T + 1)]
            a, b, _, _ = ref_block(seed, STREAM_LEASE_KEY, path, 0)
            assert int(d.key[r]) == (a << 32) | b
            assert d.winv[r] == math.sqrt(2.0 * gamma_variate(k0, k1, STREAM_TCOPULA, path, nu / 2) / nu)
        assert (d.key_late == d.key).all() and (d.split == T + 1).all()


def test_adding_a_tenant_a_month_or_a_feature_leaves_the_other_draws_in_place():
    base = DrawSource.for_config(make_config())
    ref = base.draws(100, 400)
    # a fourth tenant, appended
    d = base_dict()
    d["tenants"].append({"name": "extra", "pd": 0.2, "rho": 0.1})
    d["deals"][0]["leases"].append({"tenant": "extra", "term_months": 12, "monthly_rent": 1e5})
    more = DrawSource.for_config(make_config(d)).draws(100, 400)
    assert more.expo.shape == (300, 4)
    assert more.expo[:, :3].tobytes() == ref.expo.tobytes()
    for field in ("eps", "burst_month", "winv", "key"):
        assert getattr(more, field).tobytes() == getattr(ref, field).tobytes(), field
    # more months: the first T+1 normals are the same, and the burst month agrees where it fell within T
    d = base_dict()
    d["run"]["months"] = 72
    longer = DrawSource.for_config(make_config(d)).draws(100, 400)
    T = base.T
    assert longer.eps[:, :T + 1].tobytes() == ref.eps.tobytes()
    inside = ref.burst_month <= T
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(longer.burst_month[inside], ref.burst_month[inside])
    assert (longer.burst_month[~inside] > T).all()
    assert longer.expo.tobytes() == ref.expo.tobytes()
    # the t-copula and Poisson releases switched on move nothing else
    d = base_dict()
    d["factor"]["student_t_dof"] = 4.0
    d["gpu"].update(releases="poisson", generation_interval_months=6)
    feat = DrawSource.for_config(make_config(d)).draws(100, 400)
    for field in ("eps", "expo", "burst_month", "key"):
        assert getattr(feat, field).tobytes() == getattr(ref, field).tobytes(), field
    assert (feat.winv != 1.0).all() and (ref.winv == 1.0).all()


def test_the_seed_is_the_key():
    ref = _source(seed=11).draws(0, 200)
    same = _source(seed=11).draws(0, 200)
    _assert_draws_equal(ref, same)
    for other in (12, 11 + 2**32, 2**63 - 1):  # the low word, the high word
        d = _source(seed=other).draws(0, 200)
        assert (d.eps != ref.eps).all(), other
        assert (d.expo != ref.expo).all(), other
        assert (d.key != ref.key).all(), other
        assert (d.burst_month != ref.burst_month).any(), other


def test_a_static_factor_draws_only_y0_the_same_as_the_dynamic_one():
    d = base_dict()
    d["factor"]["persistence"] = 1.0
    static = DrawSource.for_config(make_config(d))
    dynamic = DrawSource.for_config(make_config())
    assert static.static_factor and not dynamic.static_factor
    s, y = static.draws(50, 2050), dynamic.draws(50, 2050)
    assert (s.eps[:, 1:] == 0).all()
    assert s.eps[:, 0].tobytes() == y.eps[:, 0].tobytes()
    assert (y.eps[:, 1:] != 0).all()
    for field in ("expo", "burst_month", "winv", "key"):
        assert getattr(s, field).tobytes() == getattr(y, field).tobytes(), field


def test_the_tilt_shifts_the_plain_normals_and_keeps_the_tenants_draws():
    """Under importance sampling (α = 0) eps = the plain eps + m·d bit for bit, expo and key are the
    plain ones; with α > 0 the paths whose MIXTURE uniform is below α keep the plain eps exactly."""
    cfg = make_config()
    plain = DrawSource.for_config(cfg).draws(0, 1000)
    for alpha in (0.0, 0.3):
        src = TiltedDrawSource.for_config(with_importance(cfg, factor_shift=-1.25, plain_share=alpha, strata=1))
        q = src.draws(0, 1000)
        shifted = plain.eps + (-1.25) * src.direction
        k0, k1 = _keys(cfg.run.seed)
        mix = np.array([uniform_at(k0, k1, STREAM_MIXTURE, p, 0) for p in range(1000)])
        tilted = mix >= alpha if alpha > 0 else np.ones(1000, bool)
        assert q.eps[tilted].tobytes() == shifted[tilted].tobytes()
        assert q.eps[~tilted].tobytes() == plain.eps[~tilted].tobytes()
        if alpha:
            _within((~tilted).mean(), alpha, math.sqrt(alpha * (1 - alpha) / 1000), "plain share")
        assert q.expo.tobytes() == plain.expo.tobytes() and q.key.tobytes() == plain.key.tobytes()


# ----------------------------------------------------------------------------- 7. survivor shortcut


def test_survivor_shortcut_agrees_with_the_logarithm_at_exp_minus_H():
    """tenant_defaults against default_month(H[c], −ln u) for uniforms placed just below, at and
    above exp(−H_T): H_T is set to −ln u of each tenant's own uniform, moved by 0, ±1 ulp, ±1e-13,
    ±1e-12 (the margin), ±1e-11 relative, halved or doubled; plus a PD-0 class (H ≡ 0), a class
    whose hazard becomes +∞, and forced months. The same uniforms with an unshrunk survival
    probability exp(−H_T) misclassify some ties, so the check would see a missing margin."""
    T, n_paths, seed = 24, 300, 4321
    gp = _plan(seed, T)
    kinds = ["tie", "ulp+", "ulp-", 1e-13, -1e-13, 1e-12, -1e-12, 1e-11, -1e-11, 0.5, 2.0, "zero", "inf"]
    N = 4 * len(kinds)
    tenant_class = np.arange(N, dtype=np.int32)  # one class per tenant: H is placed on its own uniform
    forced = np.full(N, T + 1, dtype=np.int32)
    forced[::7] = 5
    forced[3::11] = 30  # beyond the horizon: no effect
    ramp = np.arange(T + 1) / T
    n_default = n_survive = n_tie_month_T = 0
    unshrunk_mismatch = 0
    for path in range(n_paths):
        u = np.array([uniform_at(gp.key0, gp.key1, STREAM_DEFAULT, path, i) for i in range(N)])
        e = np.array([-math.log(x) for x in u])  # the kernel's libm logarithm, so the ties are exact
        H = np.empty((N, T + 1))
        for i in range(N):
            kind = kinds[i % len(kinds)]
            if kind == "zero":
                H[i] = 0.0
                continue
            if kind == "inf":
                H[i] = np.where(np.arange(T + 1) >= T // 2, np.inf, 0.01 * np.arange(T + 1))
                continue
            if kind == "tie":
                ht = e[i]
            elif kind == "ulp+":
                ht = np.nextafter(e[i], np.inf)
            elif kind == "ulp-":
                ht = np.nextafter(e[i], 0.0)
            elif kind in (0.5, 2.0):
                ht = e[i] * kind
            else:
                ht = e[i] * (1.0 + kind)
            H[i] = ht * ramp
            H[i, T] = ht
        surv = np.empty(N)
        class_survival(H, surv)
        # math.exp, the C library's like the kernel's: numpy's vectorised exp may differ by an ulp on some CPUs
        np.testing.assert_array_equal(surv, np.array([math.exp(-x) for x in H[:, T]]) * SURVIVOR_MARGIN)
        tau = np.empty(N, dtype=np.int32)
        tenant_defaults(gp, path, H, tenant_class, forced, surv, tau)
        m = np.array([default_month(H[i], -math.log(u[i])) for i in range(N)])
        expected = np.minimum(forced, m)
        np.testing.assert_array_equal(tau, expected, err_msg=f"path {path}")
        free = forced > T
        n_default += int(((m <= T) & free).sum())
        n_survive += int(((m == T + 1) & free).sum())
        ties = np.array([kinds[i % len(kinds)] == "tie" for i in range(N)])
        n_tie_month_T += int((m[ties] == T).sum())
        # the same without the margin: a tie whose exp(ln u) rounds above u would be called a survivor
        bare = np.exp(-H[:, T])
        tenant_defaults(gp, path, H, tenant_class, forced, bare, tau)
        unshrunk_mismatch += int((tau != expected).sum())
    assert n_default > 1000 and n_survive > 1000
    assert n_tie_month_T == 4 * n_paths  # at the tie the tenant defaults in month T
    assert unshrunk_mismatch > 0


def test_kernel_tenant_defaults_equal_the_explicit_exponentials_on_real_hazards():
    """On 500 paths of a stressed t-copula config, tenant_defaults (the shortcut) on the path's real
    class hazards H equals default_month on the written-out expo of DrawSource.draws, forced months included."""
    from kernels.credit import class_cumulative_hazard
    from kernels.factor import factor_path

    cfg = _cfg_t()
    plan = compile_plan(cfg)
    src = DrawSource.for_config(cfg)
    gp = src.plan()
    cp, fp = plan.credit, plan.factor
    T = cfg.run.months
    draws = src.draws(0, 500)
    K = cp.class_c.size
    X, H, surv = np.empty(T + 1), np.empty((K, T + 1)), np.empty(K)
    tau = np.empty(cp.tenant_class.size, dtype=np.int32)
    defaults = 0
    for p in range(500):
        factor_path(draws.eps[p], fp.phi, fp.innovation_scale, draws.burst_month[p], fp.burst_shift, X)
        class_cumulative_hazard(X, cp.class_c, cp.class_sqrt_rho, cp.class_inv_sqrt_1mrho, draws.winv[p], cp.hazard_table, H)
        class_survival(H, surv)
        tenant_defaults(gp, p, H, cp.tenant_class, cp.tenant_forced, surv, tau)
        ref = [min(cp.tenant_forced[i], default_month(H[cp.tenant_class[i]], draws.expo[p, i]))
               for i in range(tau.size)]
        assert tau.tolist() == ref, p
        defaults += int((tau <= T).sum())
    assert 0 < defaults < 500 * tau.size
