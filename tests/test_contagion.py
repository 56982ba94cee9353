"""Fire sales among holders (MODEL §6.4–6.6): published examples, properties, an oracle, bad input.

Expected numbers of the published examples are derived here, by hand or by solving the paper's own
equilibrium condition (one scalar equation) with a bisection that shares no code with the kernel.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.market import ratings as rules
from engine.analytics.vulnerability import glt_vulnerability
from engine.simulation.fire_sale import Holder, build_problem, fire_sale, solve
from naive_contagion import naive_fire_sale

finite = dict(allow_nan=False, allow_infinity=False)
TOL = 1e-6  # the published-example tolerance


def _greatest_fixed_point(h, top, step=1e-5):
    """Greatest p ≤ top with h(p) = p for an increasing h with h(top) ≤ top: scan down to the first
    p with h(p) ≥ p, then bisect between it and the grid point above."""
    hi = top
    lo = top
    while h(lo) < lo:
        hi = lo
        lo -= step
        assert lo > 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if h(mid) >= mid:
            lo = mid
        else:
            hi = mid
    return lo


# --------------------------------------------------------------------------------------------------
# Published examples
# --------------------------------------------------------------------------------------------------

def test_exponential_impact_reference_numbers():
    # CALIBRATION.md, "Reference numbers": if selling 5% of the market moves the price by 5%, then
    # β = −ln(0.95)/0.05 = 1.025866, and selling 10% gives 0.95² = 0.9025. A hedge fund that cannot
    # meet its margin call (debt 9.9 against 10 units with a 50% haircut) is liquidated: it sells 10
    # units into a market of depth 100. Its sales execute at the midpoint (1 + 0.9025)/2 = 0.95125,
    # so its fire-sale loss is 10·(1 − 0.95125) = 0.4875 and its equity 0.1 − 0.4875 = −0.3875.
    r = fire_sale([[10.0]], [1.0], 100.0, 0.05, [Holder("hedge_fund", debt=9.9)], haircuts=[0.5])
    assert r.beta[0] == pytest.approx(1.025866, abs=TOL)
    assert r.prices[0] == pytest.approx(0.9025, abs=1e-12)
    assert r.fire_sale_loss[0] == pytest.approx(0.4875, abs=1e-12)
    assert r.equity[0] == pytest.approx(-0.3875, abs=1e-12)
    assert r.failed.tolist() == [True] and r.total_sales[0] == 10.0
    # Round 1 at p = 1: call 9.9 − 5 = 4.9 against 0.5 released per unit: 9.8 units. Round 2: the
    # call can no longer be met at the lower price, so the lenders take the rest.
    assert r.rounds == 2 and r.converged


def test_glt_closed_form_two_banks_two_assets():
    # Greenwood, Landier and Thesmar (2015), "Vulnerable banks", Section 2, by hand:
    # a = (100, 50), E = (10, 10) → b = (9, 4); M = [[.5, .5], [1, 0]]; ell = (1e-3, 2e-3);
    # F1 = (−0.1, 0).
    #   R1 = M F1 = (−0.05, −0.1); A B R1 = (100·9·−0.05, 50·4·−0.1) = (−45, −20)
    #   φ = M′ A B R1 = (0.5·−45 + 1·−20, 0.5·−45) = (−42.5, −22.5)
    #   F2 = L φ = (−0.0425, −0.045); R2 = M F2 = (−0.04375, −0.0425)
    #   AV = (100·−0.04375 + 50·−0.0425)/20 = −6.5/20 = −0.325
    #   IV = (100·−0.04375/10, 50·−0.0425/10) = (−0.4375, −0.2125)
    #   1′ A M L M′ m_n: M′a = (100, 50), L M′a = (0.1, 0.1), M L M′ a = (0.1, 0.1)
    #   S = (0.1·−45/20, 0.1·−20/20) = (−0.225, −0.1), summing to AV.
    g = glt_vulnerability([100, 50], [10, 10], [[0.5, 0.5], [1.0, 0.0]], [1e-3, 2e-3], [-0.1, 0.0])
    assert g.aggregate_vulnerability == pytest.approx(-0.325, abs=1e-12)
    np.testing.assert_allclose(g.indirect_vulnerability, [-0.4375, -0.2125], rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.systemicness, [-0.225, -0.1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.leverage, [9, 4])
    np.testing.assert_allclose(g.asset_returns, [-0.0425, -0.045], rtol=0, atol=1e-12)


def test_first_round_of_bank_deleveraging_is_glt_sales():
    # GLT's banks sell A B R1 dollars to return to their initial leverage (b_n·|a_n R_n|: a loss of
    # a_n R_n at leverage b_n). One round of the kernel with banks whose max and target leverage are
    # their initial a_n/E_n sells exactly that (rules plan at marks, and A − λE = −a·b·R).
    # GLT spread the sales over assets by the pre-shock weights m_n, the kernel sells the same
    # fraction of every position, i.e. by post-shock weights: per asset the two agree to first order.
    a = np.array([100.0, 50.0, 80.0])
    E = np.array([10.0, 10.0, 4.0])
    M = np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0], [0.1, 0.2, 0.7]])
    F1 = np.array([-0.02, -0.01, -0.03])
    holdings = a[:, None] * M  # units at a pre-shock price of 1
    banks = [Holder("bank", debt=a[i] - E[i], max_leverage=a[i] / E[i], target_leverage=a[i] / E[i])
             for i in range(3)]
    r = fire_sale(holdings, 1.0 + F1, 1e6, 0.01, banks, marks=np.ones(3), max_rounds=1)
    b = (a - E) / E
    R1 = M @ F1
    np.testing.assert_allclose(r.sales @ (1.0 + F1), -a * b * R1, rtol=1e-12)
    phi = M.T @ (a * b * R1)
    np.testing.assert_allclose(r.total_sales * (1.0 + F1), -phi, rtol=3 * np.abs(F1).max())


def test_cifuentes_ferrucci_shin_contagious_failure():
    # Cifuentes, Ferrucci and Shin (2005), Section 2: bank i holds e_i units of the illiquid asset,
    # cash c_i and liabilities d_i, and must keep (p·e_i + c_i − d_i)/(p·(e_i − s_i)) ≥ r* (cash has
    # no risk weight); it sells s_i at the market price p = exp(−α·Σ s_i) (their inverse demand
    # with p(0) = 1), and a bank that cannot comply sells everything. That is our insurer with one
    # asset of RBC factor 1, min_rbc_ratio r*, sales at the final price (θ = 1) and α = β/M.
    # Bank 1 (c − d = −9.8) fails once p ≤ 0.98; bank 2 (c − d = −8.9) complies at p ≥ 0.9889 and
    # sells s_2 = 10 − (10p − 8.9)/(0.1p) below. The equilibrium is the greatest root of
    # p = exp(−α·(s_1(p) + s_2(p))).
    r_star, M, impact = 0.1, 400.0, 0.05
    alpha = -math.log(1.0 - impact) / 0.05 / M
    banks = [(10.0, 0.2, 10.0), (10.0, 1.1, 10.0)]  # (e_i, c_i, d_i)

    def s(p, e, c, d):
        equity = p * e + c - d
        if equity <= 0.0:
            return e
        return min(e, max(0.0, e - equity / (r_star * p)))

    p_star = _greatest_fixed_point(lambda p: math.exp(-alpha * sum(s(p, *b) for b in banks)), 1.0)
    holders = [Holder("insurer", cash=c, debt=d, min_rbc_ratio=r_star) for _, c, d in banks]
    r = fire_sale([[e] for e, _, _ in banks], [1.0], M, impact, holders, rbc_factors=[1.0],
                  execution_weight=1.0)
    assert r.prices[0] == pytest.approx(p_star, abs=TOL)
    np.testing.assert_allclose(r.sales[:, 0], [s(p_star, *b) for b in banks], rtol=0, atol=1e-6)
    assert r.failed.tolist() == [True, False]  # bank 2 survives, but sells: contagion by price
    assert 0.0 < r.sales[1, 0] < 10.0 and r.sales[0, 0] == 10.0
    assert 0.97 < p_star < 0.975  # the regime the comment describes
    # Selling at the final price, the fire-sale loss is the mark-to-market loss on all holdings.
    np.testing.assert_allclose(r.fire_sale_loss, 10.0 * (1.0 - r.prices[0]), rtol=1e-12)


def test_cont_schaanning_leverage_targeting():
    # Cont and Schaanning (2017), Section 3: a bank with leverage λ_i = A_i/E_i above λ_max sells
    # the fraction Γ_i = min(1, (λ_i − λ_b)·E_i/Π_i) of its marketable securities Π_i (at marks),
    # using the proceeds to repay debt, which brings its leverage to λ_b; exponential impact
    # p = f·exp(−Q/D) (β = 1 here, D the depth); sales at the post-impact price. Two banks, one
    # marketable asset hit by a 2% shock, illiquid loans o_i.
    lam_max, lam_b, D, f = 30.0, 28.5, 3000.0, 0.98
    impact = 1.0 - math.exp(-0.05)  # β = 1
    banks = [(30.0, 70.0, 96.0), (20.0, 80.0, 96.5)]  # (units, loans, debt); marks 1

    def units(p, q, o, d):
        A = q * p + o
        E = A - d
        if E <= 0.0:
            return q
        if A / E <= lam_max:
            return 0.0
        gamma = min(1.0, (A / E - lam_b) * E / (q * p))
        return gamma * q

    def h(p):
        return f * math.exp(-sum(units(p, *b) for b in banks) / D)

    p_star = _greatest_fixed_point(h, f)
    holders = [Holder("bank", debt=d, equity=q + o - d, max_leverage=lam_max, target_leverage=lam_b)
               for q, o, d in banks]
    r = fire_sale([[q] for q, _, _ in banks], [f], D, impact, holders, marks=[1.0], execution_weight=1.0)
    assert r.beta[0] == pytest.approx(1.0, abs=1e-12)
    assert r.prices[0] == pytest.approx(p_star, abs=TOL)
    np.testing.assert_allclose(r.sales[:, 0], [units(p_star, *b) for b in banks], rtol=0, atol=1e-6)
    # Bank 2 is over λ_max after the shock alone (A = 99.6, E = 3.1); bank 1 (A = 99.4, E = 3.4,
    # λ = 29.2) is pushed over by bank 2's sales: both deleverage, to λ_b exactly.
    assert np.all((r.sales[:, 0] > 0) & (r.sales[:, 0] < [30, 20]))
    assert 0.97 < p_star < 0.975  # the regime the comment describes
    np.testing.assert_allclose(r.capital_ratio, 1.0 / lam_b, rtol=1e-9)
    np.testing.assert_allclose(r.direct_loss, [0.6, 0.4], rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# Each rule by hand (a market so deep that impact is below 1e-10; sales at the final price)
# --------------------------------------------------------------------------------------------------

DEEP = dict(depth=1e12, impact=0.05, execution_weight=1.0)


def test_insurer_sells_lowest_rated_first():
    # 100 units AAA (0.3%) and 20 units B (4.5%), marks 1; B falls to 0.8. Debt 115: E⁰ = 5,
    # E = 100 + 16 − 115 = 1, RBC = 0.3 + 0.045·16 = 1.02, r = 2: shortfall 2·1.02 − 1 = 1.04.
    # Each unit of B sold cuts it by 2·0.045·0.8 = 0.072: 1.04/0.072 = 14.444… units of B, no AAA;
    # then RBC = 0.3 + 0.045·0.8·(20 − 130/9) = 0.5 and the ratio is 1/0.5 = 2.
    r = fire_sale([[100.0, 20.0]], [1.0, 0.8], holders=[Holder("insurer", debt=115.0)],
                  marks=[1.0, 1.0], ratings=["AAA", "B"], **DEEP)
    np.testing.assert_allclose(r.sales, [[0.0, 130 / 9]], rtol=1e-9, atol=1e-9)
    assert r.capital_ratio[0] == pytest.approx(2.0, rel=1e-9)
    assert r.direct_loss[0] == pytest.approx(4.0, rel=1e-12) and not r.failed[0]
    # With B at 0.7 the capital is gone (100 + 14 − 115 = −1): no sale restores a ratio, it fails
    # and has sold every charged holding. (With capital left, selling every charged holding always
    # restores it: RBC goes to 0.)
    r = fire_sale([[100.0, 20.0]], [1.0, 0.7], holders=[Holder("insurer", debt=115.0)],
                  marks=[1.0, 1.0], ratings=["AAA", "B"], **DEEP)
    assert r.failed[0] and r.sales[0, 1] == 20.0 and r.sales[0, 0] == 100.0


def test_hedge_fund_pays_the_margin_call_with_cash_then_pro_rata():
    # 10 units each of an A (haircut 4%) and a BB (15%) asset, marks 1, both fall to 0.9; repo 17,
    # cash 0.5. Collateral 0.96·9 + 0.85·9 = 16.29, call 0.71, cash pays 0.5, the rest 0.21 is met
    # by selling φ = 0.21/(0.04·9 + 0.15·9) = 0.21/1.71 of each position. Equity 3.5 − 2 = 1.5;
    # assets 18·(1 − φ) after repaying 0.5 + 18φ of repo.
    phi = 0.21 / 1.71
    r = fire_sale([[10.0, 10.0]], [0.9, 0.9], holders=[Holder("hedge_fund", cash=0.5, debt=17.0)],
                  marks=[1.0, 1.0], ratings=["A", "BB"], **DEEP)
    np.testing.assert_allclose(r.sales, [[10 * phi, 10 * phi]], rtol=1e-9)
    assert r.equity[0] == pytest.approx(1.5, rel=1e-9)
    assert r.capital_ratio[0] == pytest.approx(1.5 / (18 * (1 - phi)), rel=1e-9)
    assert not r.failed[0] and r.rounds == 1


def test_asset_manager_and_pension():
    # Asset manager: 10 units, 1 → 0.9, cash 0.2, elasticity 2.5: NAV loss 1, redemptions 2.5, cash
    # pays 0.2, sales 2.3/0.9 units; equity 10.2 − 1 − 2.5 = 6.7, no debt, ratio 1.
    # Pension: never sells; funded ratio (9 + 1)/8.
    r = fire_sale([[10.0], [10.0]], [0.9], holders=[Holder("asset_manager", cash=0.2), Holder("pension", cash=1.0, debt=8.0)],
                  marks=[1.0], **DEEP)
    np.testing.assert_allclose(r.sales[:, 0], [2.3 / 0.9, 0.0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.equity, [6.7, 2.0], rtol=1e-9)
    np.testing.assert_allclose(r.capital_ratio, [1.0, 10.0 / 8.0], rtol=1e-9)
    assert not r.failed.any()


def test_kernel_is_deterministic_on_worker_threads():
    # The run will call the kernel per path from its thread pool (nogil): same bits as serially.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    problems = []
    for _ in range(32):
        q = rng.exponential(5.0, (4, 3))
        holders = [Holder("hedge_fund", debt=0.9 * q[0].sum()), Holder("insurer", debt=0.95 * q[1].sum()),
                   Holder("asset_manager"), Holder("bank", debt=0.96 * q[3].sum(), max_leverage=20, target_leverage=18)]
        problems.append(build_problem(q, 1.0 - rng.uniform(0, 0.2, 3), 60.0, 0.1, holders, marks=np.ones(3),
                                      ratings=["AA", "BBB", "B"]))
    serial = [solve(*pb) for pb in problems]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda pb: solve(*pb), problems))
    for s, t in zip(serial, threaded):
        np.testing.assert_array_equal(s.prices, t.prices)
        np.testing.assert_array_equal(s.sales, t.sales)
    assert any(s.rounds >= 2 for s in serial) and any(s.failed.any() for s in serial)


def test_sale_order_is_numpys_stable_argsort():
    # fire_sale_paths orders each path's assets in place instead of calling np.argsort.
    from kernels.contagion import _by_factor

    rng = np.random.default_rng(5)
    for _ in range(200):
        x = rng.choice([0.0, -0.0, 0.003, 0.01, 0.1, 0.3, np.nan], size=int(rng.integers(0, 12)))
        order = np.empty(x.size, dtype=np.int64)
        _by_factor(x, order)
        np.testing.assert_array_equal(order, np.argsort(-x, kind="mergesort"))


# --------------------------------------------------------------------------------------------------
# Rule tables
# --------------------------------------------------------------------------------------------------

def test_rule_tables_match_calibration():
    assert [rules.rbc_factor(x) for x in ("AAA", "A+", "BBB-", "Ba2", "B", "CCC", "D")] == \
        [0.003, 0.003, 0.01, 0.02, 0.045, 0.10, 0.30]
    assert rules.haircut("AAA") == 0.02 and rules.haircut("A") == 0.04 and rules.haircut("equity") == 0.15
    grades = ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "D"]
    assert [rules.haircut(g) for g in grades] == sorted(rules.haircut(g) for g in grades)
    with pytest.raises(ValueError, match="unknown rating 'XYZ'"):
        rules.haircut("XYZ")
    with pytest.raises(ValueError, match="equity has no NAIC"):
        rules.rbc_factor("equity")


# --------------------------------------------------------------------------------------------------
# Properties on random small systems
# --------------------------------------------------------------------------------------------------

TYPES = ["hedge_fund", "insurer", "pension", "asset_manager", "bank"]


@st.composite
def systems(draw, max_holders=4, max_assets=3):
    n_a = draw(st.integers(1, max_assets))
    n_h = draw(st.integers(1, max_holders))
    units = st.one_of(st.just(0.0), st.floats(0.5, 20, **finite))
    holdings = np.array([[draw(units) for _ in range(n_a)] for _ in range(n_h)]).reshape(n_h, n_a)
    marks = np.array([draw(st.floats(0.5, 1.5, **finite)) for _ in range(n_a)])
    shock = np.array([draw(st.floats(0.0, 0.3, **finite)) for _ in range(n_a)])
    depth = np.array([draw(st.floats(20, 500, **finite)) for _ in range(n_a)])
    impact = np.array([draw(st.floats(0.005, 0.3, **finite)) for _ in range(n_a)])
    haircuts = np.array([draw(st.floats(0.0, 0.6, **finite)) for _ in range(n_a)])
    rbc = np.array([draw(st.sampled_from([0.0, 0.003, 0.01, 0.02, 0.045, 0.1, 0.3])) for _ in range(n_a)])
    holders = []
    for i in range(n_h):
        kind = draw(st.sampled_from(TYPES))
        value = float(holdings[i] @ marks)
        cash = draw(st.floats(0.0, 3.0, **finite))
        lev = draw(st.floats(1.0, 40.0, **finite))  # assets / equity before the shock
        other = draw(st.floats(0.0, 30.0, **finite)) if kind in ("bank", "insurer") else 0.0
        assets = value + cash + other
        debt = assets * (1.0 - 1.0 / lev)
        h = dict(type=kind, cash=cash, debt=debt, equity=assets - debt)
        if kind == "bank":
            mx = draw(st.floats(5.0, 40.0, **finite))
            h.update(max_leverage=mx, target_leverage=mx * draw(st.floats(0.7, 1.0, **finite)))
        if kind == "insurer":
            h["min_rbc_ratio"] = draw(st.floats(0.5, 3.0, **finite))
        if kind == "asset_manager":
            h["redemption_elasticity"] = draw(st.floats(0.0, 4.0, **finite))
        holders.append(h)
    theta = draw(st.sampled_from([0.5, 1.0, 0.0]))
    return dict(holdings=holdings, marks=marks, prices=marks * (1.0 - shock), depth=depth, impact=impact,
                holders=holders, haircuts=haircuts, rbc_factors=rbc, execution_weight=theta)


def _run(sys, **changes):
    kw = dict(sys)
    kw.update(changes)
    return fire_sale(kw.pop("holdings"), kw.pop("prices"), kw.pop("depth"), kw.pop("impact"), kw.pop("holders"), **kw)


@given(systems())
def test_zero_impact_means_zero_fire_sale_loss(sys):
    kw = dict(sys)
    prob, theta, tol, rounds = build_problem(kw.pop("holdings"), kw.pop("prices"), kw.pop("depth"),
                                             kw.pop("impact"), kw.pop("holders"), **kw)
    r = solve(prob._replace(beta=np.zeros_like(prob.beta)), theta, tol, rounds)
    np.testing.assert_array_equal(r.fire_sale_loss, 0.0)
    np.testing.assert_array_equal(r.prices, prob.fundamental)
    assert r.rounds <= 1  # one round of sales at the fundamental prices, which move nothing


@given(systems(), st.data())
def test_bigger_shock_never_raises_prices(sys, data):
    extra = np.array([data.draw(st.floats(0.0, 0.2, **finite)) for _ in sys["prices"]])
    r1 = _run(sys)
    r2 = _run(sys, prices=sys["prices"] * (1.0 - extra))
    assert r1.converged and r2.converged
    assert np.all(r2.prices <= r1.prices * (1 + 1e-12))
    assert np.all(r2.total_sales >= r1.total_sales - 1e-9 * sys["depth"])
    assert not np.any(r1.failed & ~r2.failed)


@given(systems(), st.data())
def test_higher_haircuts_never_lower_losses(sys, data):
    bump = np.array([data.draw(st.floats(0.0, 0.4, **finite)) for _ in sys["prices"]])
    higher = np.minimum(1.0, sys["haircuts"] + bump)
    r1 = _run(sys, execution_weight=1.0)
    r2 = _run(sys, haircuts=higher, execution_weight=1.0)
    assert np.all(r2.prices <= r1.prices * (1 + 1e-12))
    scale = 1e-9 * (1.0 + np.abs(sys["holdings"]).sum())
    # Selling at the final price, each holder's loss is Σ q·(p⁰ − p): lower prices, higher losses.
    assert np.all(r2.total_loss >= r1.total_loss - scale)
    # At the midpoint a seller locks in half the impact on what it sold, so only the prices are
    # monotone there, not each seller's accounting loss.
    m1, m2 = _run(sys), _run(sys, haircuts=higher)
    assert np.all(m2.prices <= m1.prices * (1 + 1e-12))


@given(systems(), st.randoms(use_true_random=False))
def test_fixed_point_independent_of_holder_order(sys, rnd):
    n = len(sys["holders"])
    perm = list(range(n))
    rnd.shuffle(perm)
    r1 = _run(sys)
    r2 = _run(sys, holdings=sys["holdings"][perm], holders=[sys["holders"][i] for i in perm])
    np.testing.assert_allclose(r2.prices, r1.prices, rtol=1e-12, atol=0)
    np.testing.assert_allclose(r2.sales, r1.sales[perm], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r2.fire_sale_loss, r1.fire_sale_loss[perm], rtol=0, atol=1e-9)
    assert r2.failed.tolist() == r1.failed[perm].tolist()
    assert r2.rounds == r1.rounds


@given(systems())
def test_kernel_equals_naive_oracle(sys):
    kw = dict(sys)
    prob, theta, tol, rounds = build_problem(kw.pop("holdings"), kw.pop("prices"), kw.pop("depth"),
                                             kw.pop("impact"), kw.pop("holders"), **kw)
    r = solve(prob, theta, tol, rounds)
    o = naive_fire_sale(prob, theta, tol)
    np.testing.assert_allclose(r.prices, o["prices"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(r.sales, o["sales"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(r.direct_loss, o["direct_loss"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.fire_sale_loss, o["fire_sale_loss"], rtol=0, atol=1e-7)
    assert r.failed.tolist() == o["failed"]


@given(systems())
def test_equilibrium_and_accounting(sys):
    r = _run(sys)
    prob = build_problem(sys["holdings"], sys["prices"], sys["depth"], sys["impact"], sys["holders"],
                         marks=sys["marks"], haircuts=sys["haircuts"], rbc_factors=sys["rbc_factors"])[0]
    assert r.converged
    # Prices are the impact of the sales, sales never exceed holdings, and the split adds up.
    np.testing.assert_allclose(r.prices, r.fundamental * np.exp(-r.beta * r.total_sales / prob.depth), rtol=1e-14)
    np.testing.assert_allclose(r.total_sales, r.sales.sum(axis=0), rtol=1e-14)
    assert np.all(r.sales <= sys["holdings"]) and np.all(r.sales >= 0)
    assert np.all(r.prices <= r.fundamental) and np.all(r.fire_sale_loss >= -1e-12)
    np.testing.assert_allclose(r.direct_loss, sys["holdings"] @ (sys["marks"] - sys["prices"]), rtol=1e-12, atol=1e-12)
    pension = np.array([h["type"] == "pension" for h in sys["holders"]])
    assert np.all(r.sales[pension] == 0) and not r.failed[pension].any()
    # Equity after losses: E⁰ − direct − fire-sale loss (asset managers also pay redemptions).
    e0 = np.array([h["equity"] for h in sys["holders"]])
    am = np.array([h["type"] == "asset_manager" for h in sys["holders"]])
    np.testing.assert_allclose(r.equity[~am], (e0 - r.total_loss)[~am], rtol=0, atol=1e-9)
    assert np.all(r.equity[am] <= (e0 - r.total_loss)[am] + 1e-9)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------

HF = Holder("hedge_fund", debt=1.0)
OK = dict(holdings=[[1.0, 2.0]], prices=[1.0, 1.0], depth=100.0, impact=0.05, holders=[HF], haircuts=[0.1, 0.1])


@pytest.mark.parametrize("change, message", [
    (dict(impact=0.0), r"impact\[0\] = 0 is outside \(0, 1\)"),
    (dict(impact=[0.05, 1.0]), r"impact\[1\] = 1 is outside \(0, 1\)"),
    (dict(impact=-0.1), r"impact\[0\] = -0.1 is outside \(0, 1\)"),
    (dict(holders=[Holder("bank", debt=1.0, equity=-1.0, max_leverage=10, target_leverage=8)]),
     r"holders\[0\]\.equity = -1 is negative"),
    (dict(holders=[Holder("hedge_fund", debt=5.0)], haircuts=[0.1, 0.1]), r"holders\[0\] has negative equity before the shock"),
    (dict(holders=[Holder("pension", debt=1.0, equity=0.5)]), r"holders\[0\]\.equity = 0.5 is below"),
    (dict(holdings=[[1.0, -2.0]]), r"holdings\[0,1\] = -2 is negative"),
    (dict(holdings=[[1.0, float("nan")]]), r"holdings\[0,1\] = nan is not finite"),
    (dict(holdings=[1.0, 2.0]), r"holdings must be a holders × assets matrix"),
    (dict(prices=[1.0]), r"prices must have one entry per asset \(2\)"),
    (dict(prices=[1.0, 0.0]), r"prices\[1\] = 0 is not positive"),
    (dict(depth=[100.0, 100.0, 1.0]), r"depth must have one entry per asset \(2\)"),
    (dict(depth=0.0), r"depth\[0\] = 0 is not positive"),
    (dict(holders=[HF, HF]), r"holders must have one entry per row of holdings \(1\), got 2"),
    (dict(holders=[Holder("hedgefund")]), r"holders\[0\]\.type = 'hedgefund' is not one of hedge_fund"),
    (dict(holders=[{"type": "pension", "leverage": 3}]), r"holders\[0\] has unknown field\(s\) leverage"),
    (dict(holders=[Holder("bank", max_leverage=10)]), r"holders\[0\] is a bank: max_leverage and target_leverage"),
    (dict(holders=[Holder("bank", max_leverage=10, target_leverage=12)]), r"holders\[0\]\.target_leverage = 12 is above"),
    (dict(holders=[Holder("hedge_fund", cash=-1.0)]), r"holders\[0\]\.cash = -1 is below 0"),
    (dict(haircuts=None), r"haircuts \(or ratings\) is required"),
    (dict(haircuts=[0.1, 1.5]), r"haircuts\[1\] = 1.5 is outside \[0, 1\]"),
    (dict(holders=[Holder("insurer")], haircuts=None), r"rbc_factors \(or ratings\) is required"),
    (dict(haircuts=None, ratings=["A", "Q"]), r"ratings\[1\]: unknown rating 'Q'"),
    (dict(haircuts=None, ratings=["A"]), r"ratings must have one entry per asset \(2\)"),
    (dict(execution_weight=1.5), r"execution_weight = 1.5 is above 1"),
    (dict(tol=0.0), r"tol = 0 is not above 0"),
    (dict(max_rounds=0), r"max_rounds = 0 must be a positive integer"),
])
def test_bad_input_names_the_argument(change, message):
    kw = dict(OK)
    kw.update(change)
    with pytest.raises(ValueError, match=message):
        _run(kw)


@pytest.mark.parametrize("args, message", [
    (([100, 50], [10, 10], [[0.5, 0.5]], [1e-3, 1e-3], [-0.1, 0]), r"a must have one entry per bank \(1\)"),
    (([100], [-1], [[0.5, 0.5]], [1e-3, 1e-3], [-0.1, 0]), r"E\[0\] = -1 is negative"),
    (([100], [200], [[0.5, 0.5]], [1e-3, 1e-3], [-0.1, 0]), r"E\[0\] = 200 exceeds a\[0\]"),
    (([100], [10], [[0.5, 0.5]], [1e-3], [-0.1, 0]), r"ell must have one entry per asset \(2\)"),
    (([100], [10], [[0.5, 0.5]], [1e-3, -1], [-0.1, 0]), r"ell\[1\] = -1 is negative"),
    (([100], [10], [0.5, 0.5], [1e-3, 1e-3], [-0.1, 0]), r"M must be an N × K matrix"),
])
def test_glt_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        glt_vulnerability(*args)
