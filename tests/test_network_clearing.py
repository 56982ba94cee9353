"""Network clearing (MODEL §7): published examples, invariants on random networks, bad input.

The kernel (``kernels.network.clear_network``) is checked against numbers published with open code,
against a hand-solved case with senior debt, against plain Picard iteration of the clearing map from
p̄ (which falls to the greatest fixed point), and, without default costs or senior debt, against the
Eisenberg–Noe linear programme.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from engine.simulation.clearing import clear, fundamental_defaults
import numba
from kernels.network import (
    _pay_defaulters,
    _relative_liabilities,
    clear_network,
    clear_network_in,
    clearing_scratch,
    picard_clearing,
)

finite = dict(allow_nan=False, allow_infinity=False)
TOL = 1e-9


# --------------------------------------------------------------------------------------------------
# Published examples
# --------------------------------------------------------------------------------------------------

# FinNetValu (Julia), bertschi/FinNetValu, test/models/test_rogers.jl, testset "GClearVecAlgo":
# RogersModel with α = β = 1 (Eisenberg–Noe) on this L; `fixvalue(net, a)` returns one column per
# round of the greatest-clearing-vector algorithm, the first being p̄ = (0.8, 12.5, 8.4):
#   a1 = (1, 1, 1)   -> [0.8 0.8; 12.5 9.5; 8.4 8.4]                 (one wave of defaults)
#   a2 = (0, 0, 0.1) -> [0.8 0.8 0.8; 12.5 8.5 5.625; 8.4 8.4 5.525] (two waves)
FINNETVALU_L = [[0.0, 0.1, 0.7], [2.0, 0.0, 10.5], [0.0, 8.4, 0.0]]


@pytest.mark.parametrize("e, expected, waves", [
    ((1.0, 1.0, 1.0), (0.8, 9.5, 8.4), 1),
    ((0.0, 0.0, 0.1), (0.8, 5.625, 5.525), 2),
])
def test_finnetvalu_eisenberg_noe_example(e, expected, waves):
    r = clear(FINNETVALU_L, e)
    np.testing.assert_allclose(r.payments, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(r.nominal, (0.8, 12.5, 8.4), rtol=0, atol=TOL)
    assert r.rounds == waves
    assert r.defaulted.tolist() == [False, True, waves == 2]


# systemicrisk (R, Gandy & Veraart), cran/systemicrisk, R/lib_Network_Evaluations.R and
# man/default_clearing.Rd, example of `default_clearing` (Rogers & Veraart 2013, Definition 3.6):
#   ea <- c(1/2,5/8,3/4); el <- c(3/2,1/2,1/2); x <- 0.5
#   L <- matrix(c(0,x,1-x,1-x,0,x,x,1-x,0),nrow=3)      # column-major: every off-diagonal L_ij = 1/2
#   default_clearing(L,ea,el)                          -> defaults 1 1 0, 1.473214 1.419643 1.500000
#   default_clearing(L,ea,el, alpha=0.5, beta=0.7)     -> defaults 1 1 1, 0.5020200 0.5147049 0.5653806
# (example output as published on rdrr.io/cran/systemicrisk/man/default_clearing.html). There the
# external liabilities `el` rank pari passu with interbank ones (p̄ = rowSums(L) + el and Π is scaled
# by that p̄), which is our model with one more firm, the external creditors, that is owed `el` and
# owes nothing. The clearing vector there is each bank's total payment, our p for the first 3 firms.
SR_EA = [Fraction(1, 2), Fraction(5, 8), Fraction(3, 4)]
SR_EL = [Fraction(3, 2), Fraction(1, 2), Fraction(1, 2)]


def _systemicrisk_network():
    L = np.zeros((4, 4))
    L[:3, :3] = 0.5 * (1 - np.eye(3))
    L[:3, 3] = [float(x) for x in SR_EL]
    return L, np.array([float(x) for x in SR_EA] + [0.0])


def _solve_fractions(M, b):
    """Exact solution of M x = b over the rationals (Gauss–Jordan), for closed-form references."""
    n = len(b)
    A = [list(M[i]) + [b[i]] for i in range(n)]
    for c in range(n):
        r = next(r for r in range(c, n) if A[r][c] != 0)
        A[c], A[r] = A[r], A[c]
        A[c] = [v / A[c][c] for v in A[c]]
        for r in range(n):
            if r != c and A[r][c] != 0:
                A[r] = [a - A[r][c] * b_ for a, b_ in zip(A[r], A[c])]
    return [A[i][n] for i in range(n)]


def _exact_payments(L, e, d, alpha, beta, D):
    """Exact payments when the firms in D default and pay something, the others pay p̄ in full:
    ``p_D = α e_D − d_D + β Π_{·,D}ᵀ p``, over the rationals. Returns (p, A(p), p̄)."""
    n = len(e)
    L = [[Fraction(x) for x in row] for row in L]
    e, d, alpha, beta = [Fraction(x) for x in e], [Fraction(x) for x in d], Fraction(alpha), Fraction(beta)
    pbar = [sum(row) for row in L]
    pi = [[L[i][j] / pbar[i] if pbar[i] else Fraction(0) for j in range(n)] for i in range(n)]
    D = sorted(D)
    M = [[(1 if a == c else 0) - beta * pi[D[c]][D[a]] for c in range(len(D))] for a in range(len(D))]
    rhs = [alpha * e[i] - d[i] + beta * sum(pi[j][i] * pbar[j] for j in range(n) if j not in D) for i in D]
    x = dict(zip(D, _solve_fractions(M, rhs)))
    p = [x.get(i, pbar[i]) for i in range(n)]
    A = [e[i] + sum(pi[j][i] * p[j] for j in range(n)) for i in range(n)]
    return p, A, pbar


def _systemicrisk_exact(alpha, beta, defaulters):
    L, _ = _systemicrisk_network()
    L = [[Fraction(x) for x in row] for row in L]
    for i in range(3):
        L[i][3] = SR_EL[i]
    p, _, _ = _exact_payments(L, SR_EA + [0], [0] * 4, alpha, beta, defaulters)
    return p[:3]


def test_systemicrisk_eisenberg_noe_example():
    L, e = _systemicrisk_network()
    r = clear(L, e)
    exact = _systemicrisk_exact(Fraction(1), Fraction(1), {0, 1})
    assert exact[:2] == [Fraction(165, 112), Fraction(159, 112)]  # hand-checked closed form
    np.testing.assert_allclose(r.payments[:3], [float(x) for x in exact], rtol=0, atol=TOL)
    np.testing.assert_allclose(r.payments[:3], [1.473214, 1.419643, 1.500000], rtol=0, atol=5e-7)
    assert r.defaulted.tolist() == [True, True, False, False]


def test_systemicrisk_rogers_veraart_example_with_default_costs():
    L, e = _systemicrisk_network()
    r = clear(L, e, alpha=0.5, beta=0.7)
    exact = _systemicrisk_exact(Fraction(1, 2), Fraction(7, 10), {0, 1, 2})
    np.testing.assert_allclose(r.payments[:3], [float(x) for x in exact], rtol=0, atol=TOL)
    # The published output has 7 decimals.
    np.testing.assert_allclose(r.payments[:3], [0.5020200, 0.5147049, 0.5653806], rtol=0, atol=5e-8)
    assert r.defaulted.tolist() == [True, True, True, False]


# Senior debt and the floor at zero: no published example has both, so this one is solved by hand.
# L[0,1] = 4, L[1,0] = 1, L[1,2] = 3, L[2,0] = 2: p̄ = (4, 4, 2), Π[1,0] = 1/4, Π[1,2] = 3/4.
# e = (1, 1/2, 3), α = 1/2, β = 4/5, d = (d0, 0, 1/2).
# Wave 1 (at p̄): A_0 = 1 + 1 + 2 = 4 < d0 + 4; A_1 = 1/2 + 4 ≥ 4; A_2 = 3 + 3 ≥ 5/2.
#   p_0 = max(0, 1/2 + (4/5)(1 + 2) − d0) = 29/10 − d0 > 0 for both d0 below; A_1 = 1/2 + p_0 < 4.
# Wave 2, D = {0, 1}: p_0 = max(0, 1/2 + (4/5)(p_1/4 + 2) − d0) = max(0, 21/10 − d0 + p_1/5),
#   p_1 = max(0, 1/2·1/2 + (4/5)p_0) = 1/4 + (4/5)p_0.
#   d0 = 2:    both positive: p_1 = 1/4 + (4/5)(1/10 + p_1/5) => p_1 = (33/100)/(21/25) = 11/28, p_0 = 5/28;
#              the external creditors of firm 0 get d0 = 2 in full.
#   d0 = 11/5: positive p_0 would need p_1 = (17/100)/(21/25) = 17/84 and p_0 = −1/10 + 17/420 < 0, so
#              p_0 = 0, p_1 = 1/4; firm 0's cut assets 1/2 + (4/5)(1/16 + 2) = 43/20 < 11/5 all go to
#              its external creditors.
#   Firm 2 stays solvent: A_2 = 3 + (3/4)p_1 ≥ 5/2.
@pytest.mark.parametrize("d0, expected, external0", [
    (2.0, (5 / 28, 11 / 28, 2.0), 2.0),
    (2.2, (0.0, 0.25, 2.0), 43 / 20),
])
def test_senior_debt_hand_solved(d0, expected, external0):
    L = [[0, 4, 0], [1, 0, 3], [2, 0, 0]]
    r = clear(L, [1, 0.5, 3], alpha=0.5, beta=0.8, external_debt=[d0, 0, 0.5])
    np.testing.assert_allclose(r.payments, expected, rtol=0, atol=TOL)
    assert r.defaulted.tolist() == [True, True, False]
    assert r.rounds == 2
    np.testing.assert_allclose(r.external_payments, [external0, 0.0, 0.5], rtol=0, atol=TOL)
    assert fundamental_defaults(L, [1, 0.5, 3], [d0, 0, 0.5]).tolist() == [True, False, False]


def test_closed_pair_owing_senior_debt_pays_nothing():
    # Two firms owing each other 1 with no assets and senior debt 1/2 each: with β = 1 the system
    # "everyone pays something" is inconsistent (p0 = p1 − 1/2, p1 = p0 − 1/2); the answer is 0.
    r = clear([[0, 1], [1, 0]], [0, 0], external_debt=[0.5, 0.5])
    np.testing.assert_array_equal(r.payments, [0.0, 0.0])
    assert r.defaulted.all() and r.rounds == 1


def test_firm_exactly_at_the_boundary_stays_solvent():
    # Found by a random search over integer networks: at the greatest clearing vector firm 1's
    # assets equal its obligations exactly, but the thirds and sevenths in Πᵀp round a hair below.
    # Without the solvency tolerance firm 1 was marked defaulted and, with α = 0, the whole network
    # collapsed to p = 0.
    L = [[0, 0, 0, 3, 2], [1, 0, 3, 0, 0], [2, 2, 0, 0, 3], [3, 2, 0, 0, 0], [3, 3, 0, 0, 0]]
    e, d = [0, 1, 0, 1, 0], [0, 0, Fraction(1, 2), 0, Fraction(1, 2)]
    exact, A, pbar = _exact_payments(L, e, d, 0, 1, {0, 2, 3, 4})
    assert A[1] == pbar[1] + d[1]  # exactly at the boundary
    assert all(A[i] < pbar[i] + d[i] and exact[i] > 0 for i in (0, 2, 3, 4))
    r = clear(L, [float(x) for x in e], alpha=0.0, beta=1.0, external_debt=[float(x) for x in d])
    np.testing.assert_allclose(r.payments, [float(x) for x in exact], rtol=0, atol=TOL)
    assert r.defaulted.tolist() == [True, False, True, True, True]


def test_singular_round_falls_back_to_the_greatest_solution():
    # Not reachable from clear_network in any search so far, so the fallback is driven directly: a
    # closed pair owing each other 1 with nothing else, both assumed in default, α = β = 1. Every
    # p0 = p1 = t ∈ [0, 1] solves the round; below last round's payments (0.7, 0.7) the greatest is
    # those payments themselves, not the least solution 0 that growing the paying set would give.
    L = np.array([[0.0, 1.0], [1.0, 0.0]])
    ws = clearing_scratch(2)
    _relative_liabilities(L, ws.pbar, ws.Pi)
    p = np.array([0.7, 0.7])
    _pay_defaulters(ws, np.zeros(2), np.zeros(2), 1.0, 1.0, np.ones(2, dtype=np.int8), p)
    np.testing.assert_allclose(p, [0.7, 0.7], rtol=0, atol=1e-15)


def test_no_obligations_and_empty_network():
    r = clear(np.zeros((3, 3)), [0, 1, 2], external_debt=[0, 2, 1])
    np.testing.assert_array_equal(r.payments, 0.0)
    assert r.defaulted.tolist() == [False, True, False]
    np.testing.assert_array_equal(r.ratios, 1.0)
    np.testing.assert_allclose(r.external_payments, [0, 1, 1])
    r = clear(np.zeros((0, 0)), [])
    assert r.payments.shape == (0,) and r.rounds == 0


# --------------------------------------------------------------------------------------------------
# Properties on random small networks
# --------------------------------------------------------------------------------------------------

@st.composite
def networks(draw, costs=True, debt=True):
    n = draw(st.integers(1, 6))
    amount = st.one_of(st.just(0.0), st.just(0.0), st.floats(0.01, 10, **finite))
    L = np.array([[0.0 if i == j else draw(amount) for j in range(n)] for i in range(n)]).reshape(n, n)
    e = np.array([draw(st.floats(0, 10, **finite)) for _ in range(n)])
    if debt and draw(st.booleans()):
        d = np.array([draw(st.one_of(st.just(0.0), st.floats(0, 5, **finite))) for _ in range(n)])
    else:
        d = np.zeros(n)
    alpha = draw(st.floats(0, 1, **finite)) if costs else 1.0
    beta = draw(st.floats(0, 1, **finite)) if costs else 1.0
    return L, e, d, alpha, beta


def _scale(L, e, d):
    return 1.0 + float(max(L.sum(axis=1).max(initial=0), L.sum(axis=0).max(initial=0), e.max(initial=0), d.max(initial=0)))


def _parts(L, e, d, alpha, beta, p):
    """p̄, A(p), the cut assets and the map's value at p, in plain numpy."""
    pbar = L.sum(axis=1)
    Pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    inflow = Pi.T @ p
    cut = alpha * e + beta * inflow
    return pbar, e + inflow, cut, np.maximum(0.0, cut - d)


def _run(L, e, d, alpha, beta):
    n = L.shape[0]
    p = np.empty(n)
    flags = np.empty(n, dtype=np.int8)
    rounds = clear_network(L, e, d, alpha, beta, p, flags)
    return p, flags.astype(bool), rounds


def _picard(L, e, d, alpha, beta):
    n = L.shape[0]
    p = np.empty(n)
    flags = np.empty(n, dtype=np.int8)
    it = picard_clearing(L, e, d, alpha, beta, p, flags, 1e-15 * _scale(L, e, d), 2_000_000)
    return p, flags.astype(bool), it


@given(networks())
def test_payments_are_a_fixed_point_in_range(net):
    L, e, d, alpha, beta = net
    p, dflt, rounds = _run(L, e, d, alpha, beta)
    tol = TOL * _scale(L, e, d)
    pbar, A, cut, pay_if_default = _parts(L, e, d, alpha, beta, p)
    margin = A - d - pbar
    for i in range(len(p)):
        if abs(margin[i]) > tol:  # off the knife edge the branch is determined
            assert dflt[i] == (margin[i] < 0)
        assert p[i] == pytest.approx(pay_if_default[i] if dflt[i] else pbar[i], abs=tol)
    assert np.all(p >= 0) and np.all(p <= pbar + tol)
    assert 0 <= rounds <= len(p)


@given(networks())
def test_fictitious_default_equals_picard_greatest_fixed_point(net):
    L, e, d, alpha, beta = net
    p, dflt, _ = _run(L, e, d, alpha, beta)
    q, qdflt, it = _picard(L, e, d, alpha, beta)
    assert it < 2_000_000
    np.testing.assert_allclose(p, q, rtol=0, atol=1e-8 * _scale(L, e, d))
    assert dflt.tolist() == qdflt.tolist()


@given(networks(costs=False, debt=False))
def test_eisenberg_noe_equals_linear_programme(net):
    # Eisenberg & Noe (2001), Lemma 4: with no default costs the greatest clearing vector maximises
    # Σ p over {0 ≤ p ≤ p̄, p ≤ e + Πᵀp}.
    L, e, d, _, _ = net
    p, _, _ = _run(L, e, d, 1.0, 1.0)
    pbar = L.sum(axis=1)
    Pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    n = len(e)
    lp = linprog(-np.ones(n), A_ub=np.eye(n) - Pi.T, b_ub=e, bounds=list(zip(np.zeros(n), pbar)), method="highs")
    assert lp.status == 0
    np.testing.assert_allclose(p, lp.x, rtol=0, atol=1e-7 * _scale(L, e, d))


@given(networks(), st.data())
def test_payments_non_decreasing_in_external_assets(net, data):
    L, e, d, alpha, beta = net
    bump = np.array([data.draw(st.one_of(st.just(0.0), st.floats(0, 5, **finite))) for _ in e])
    p, dflt, _ = _run(L, e, d, alpha, beta)
    q, qdflt, _ = _run(L, e + bump, d, alpha, beta)
    assert np.all(q >= p - TOL * _scale(L, e + bump, d))
    assert not np.any(qdflt & ~dflt)


@given(networks(costs=False, debt=False))
def test_eisenberg_noe_conserves_value(net):
    L, e, d, _, _ = net
    r = clear(L, e)
    pbar, A, _, _ = _parts(L, e, d, 1.0, 1.0, r.payments)
    tol = TOL * _scale(L, e, d)
    assert A.sum() - r.payments.sum() == pytest.approx(e.sum(), abs=tol)
    # No default costs: a defaulter passes on everything, so the firms' equity is all of Σ e.
    assert r.equity.sum() == pytest.approx(e.sum(), abs=tol)


@given(networks())
def test_value_accounting_with_costs_and_senior_debt(net):
    # Σ e = equity + what external creditors get + what default costs destroy.
    L, e, d, alpha, beta = net
    r = clear(L, e, alpha, beta, d)
    pbar, A, cut, _ = _parts(L, e, d, alpha, beta, r.payments)
    lost = np.where(r.defaulted, A - cut, 0.0)
    total = r.equity.sum() + r.external_payments.sum() + lost.sum()
    assert total == pytest.approx(e.sum(), abs=TOL * len(e) * _scale(L, e, d))


@given(networks())
def test_senior_debt_is_paid_before_other_firms(net):
    L, e, d, alpha, beta = net
    r = clear(L, e, alpha, beta, d)
    _, _, cut, _ = _parts(L, e, d, alpha, beta, r.payments)
    tol = TOL * _scale(L, e, d)
    for i in np.flatnonzero(r.defaulted):
        assert r.external_payments[i] == pytest.approx(min(d[i], cut[i]), abs=tol)
        if cut[i] <= d[i]:
            assert r.payments[i] == 0.0  # nothing to other firms until d is paid
        if r.payments[i] > 0:
            assert r.external_payments[i] == pytest.approx(d[i], abs=tol)
    np.testing.assert_array_equal(r.external_payments[~r.defaulted], d[~r.defaulted])


@given(networks())
def test_fundamental_defaults_are_the_first_wave(net):
    L, e, d, alpha, beta = net
    r = clear(L, e, alpha, beta, d)
    own = fundamental_defaults(L, e, d)
    tol = TOL * _scale(L, e, d)
    edge = np.abs(e + L.sum(axis=0) - d - L.sum(axis=1)) <= tol
    assert np.all(r.defaulted | ~own | edge)
    if not own.any() and not edge.any():
        assert r.rounds == 0 and not r.defaulted.any()
    if own.any() and r.rounds == 1:  # one wave: every defaulter failed on its own
        assert np.all(own | ~r.defaulted | edge)


@given(networks())
def test_result_fields(net):
    L, e, d, alpha, beta = net
    r = clear(L, e, alpha, beta, d)
    np.testing.assert_array_equal(r.nominal, L.sum(axis=1))
    assert r.defaulted.dtype == bool and isinstance(r.rounds, int)
    has = r.nominal > 0
    np.testing.assert_allclose(r.ratios[has], r.payments[has] / r.nominal[has])
    np.testing.assert_array_equal(r.ratios[~has], 1.0)
    assert np.all((r.ratios < 1) <= r.defaulted)


# The engine runs kernels on Python threads; a numba parallel loop is the harshest concurrent caller.
@numba.njit(parallel=True)
def _clear_many(Ls, es, ds, alpha, beta, out, flags, rounds):
    for k in numba.prange(Ls.shape[0]):
        rounds[k] = clear_network(Ls[k], es[k], ds[k], alpha, beta, out[k], flags[k])


def test_callable_per_path_inside_prange_and_deterministic():
    rng = np.random.default_rng(7)
    K, n = 64, 8
    Ls = rng.exponential(1.0, (K, n, n)) * (rng.random((K, n, n)) < 0.4)
    for k in range(K):
        np.fill_diagonal(Ls[k], 0.0)
    es = rng.exponential(1.0, (K, n))
    ds = rng.exponential(0.3, (K, n))
    out = np.empty((K, n))
    flags = np.empty((K, n), dtype=np.int8)
    rounds = np.empty(K, dtype=np.int64)
    _clear_many(Ls, es, ds, 0.6, 0.9, out, flags, rounds)
    for k in range(K):
        p, dflt, rk = _run(Ls[k], es[k], ds[k], 0.6, 0.9)
        np.testing.assert_array_equal(out[k], p)  # bit-identical to the serial call
        assert flags[k].astype(bool).tolist() == dflt.tolist() and rounds[k] == rk
    assert flags.any() and rounds.max() >= 2  # the sample exercises cascades


def test_one_scratch_serves_every_network():
    # The simulation clears every year of every path in one ClearingScratch per thread: whatever a
    # previous network left in it must not reach the next answer.
    rng = np.random.default_rng(11)
    K, n = 64, 8
    ws = clearing_scratch(n)
    for k in range(K):
        L = rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < 0.4)
        np.fill_diagonal(L, 0.0)
        e, d = rng.exponential(1.0, n), rng.exponential(0.3, n)
        p, flags = np.empty(n), np.empty(n, dtype=np.int8)
        rk = clear_network_in(ws, L, e, d, 0.6, 0.9, p, flags)
        p0, flags0 = np.empty(n), np.empty(n, dtype=np.int8)
        assert rk == clear_network(L, e, d, 0.6, 0.9, p0, flags0)
        np.testing.assert_array_equal(p, p0)
        np.testing.assert_array_equal(flags, flags0)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(L=[[0, 1, 0], [0, 0, 1], [-1, 0, 0]], e=[1, 1, 1]), r"L\[2,0\] = -1 is negative"),
    (dict(L=[[0, 1], [float("nan"), 0]], e=[1, 1]), r"L\[1,0\] = nan is not finite"),
    (dict(L=[[0, 1], [1, 2]], e=[1, 1]), r"firm 1 owes itself"),
    (dict(L=[[0, 1, 2], [1, 0, 2]], e=[1, 1]), r"L must be a square"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1, 1]), r"e must have one entry per firm \(2\)"),
    (dict(L=[[0, 1], [1, 0]], e=[1, -2]), r"e\[1\] = -2 is negative"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1], external_debt=[0, -1]), r"external_debt\[1\] = -1 is negative"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1], external_debt=[0]), r"external_debt must have one entry per firm"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1], alpha=1.5), r"alpha = 1.5 is outside \[0, 1\]"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1], beta=-0.1), r"beta = -0.1 is outside \[0, 1\]"),
    (dict(L=[[0, 1], [1, 0]], e=[1, 1], alpha=float("nan")), r"alpha = nan is outside \[0, 1\]"),
])
def test_bad_input_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        clear(**kwargs)


def test_fundamental_defaults_validates_too():
    with pytest.raises(ValueError, match=r"firm 0 owes itself"):
        fundamental_defaults([[1, 0], [0, 0]], [1, 1])
